/// Why a provider's token endpoint gave no tokens.
package enum OAuthProviderError: Error, Sendable {
    /// It answered with an OAuth error (`invalid_grant`: the code or refresh token is no longer
    /// good): only a new authorization helps.
    case refused(error: String, description: String?)
    /// It did not answer, or not as OAuth says (network, 5xx, not JSON): trying later may work.
    case unreachable(String)
}
