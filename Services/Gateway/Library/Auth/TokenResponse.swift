/// The token endpoint's answer (RFC 6749 section 5.1; a token exchange, RFC 8693, also names the
/// issued token's type).
struct TokenResponse: Encodable {
    static let accessTokenType = "urn:ietf:params:oauth:token-type:access_token"

    var accessToken: String
    var issuedTokenType: String?
    var tokenType = "Bearer"
    var expiresIn: Int64
    /// The next refresh token (authorization-code and refresh grants; rotated on every use).
    var refreshToken: String?
    var scope: String?

    init(accessToken: String, issuedTokenType: String? = nil, expiresIn: Int64, refreshToken: String? = nil, scope: String? = nil) {
        self.accessToken = accessToken
        self.issuedTokenType = issuedTokenType
        self.expiresIn = expiresIn
        self.refreshToken = refreshToken
        self.scope = scope
    }

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case issuedTokenType = "issued_token_type"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case refreshToken = "refresh_token"
        case scope
    }
}
