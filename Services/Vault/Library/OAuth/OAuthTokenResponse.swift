/// A token endpoint's successful answer (RFC 6749 §5.1).
package struct OAuthTokenResponse: Decodable, Sendable {
    package var accessToken: String
    package var tokenType: String?
    package var expiresIn: Double?
    /// A new refresh token, when the provider rotates them (keep the old one when absent).
    package var refreshToken: String?
    /// An OpenID Connect provider's ID token (signing in at an org's provider).
    package var idToken: String?

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case refreshToken = "refresh_token"
        case idToken = "id_token"
    }
}
