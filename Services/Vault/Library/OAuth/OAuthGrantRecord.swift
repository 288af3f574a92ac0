import Foundation
import WardenContracts

/// A grant as the vault stores it: the value of secret `[users/<user>/]oauth/<name>/grant`.
package struct OAuthGrantRecord: Codable, Sendable {
    package var accessToken: String
    package var refreshToken: String?
    package var expiresAt: Date?
    package var obtainedAt: Date
    /// Set when the provider refused the refresh token: the grant is dead until connected again.
    package var failure: String?
    /// Set by a disconnect: written (rather than only erasing the grant) so that a refresh running
    /// meanwhile cannot bring the grant back.
    package var disconnectedBy: String?

    package init(_ tokens: OAuthTokenResponse, keeping refreshToken: String? = nil, at now: Date) {
        self.accessToken = tokens.accessToken
        self.refreshToken = tokens.refreshToken ?? refreshToken
        self.expiresAt = tokens.expiresIn.map { now.addingTimeInterval(max(0, $0)) }
        self.obtainedAt = now
    }

    /// What a disconnect leaves.
    package init(disconnectedBy actor: String, at now: Date) {
        self.accessToken = ""
        self.obtainedAt = now
        self.disconnectedBy = actor
    }

    /// When to refresh: before expiry by a third of the token's life, at most a minute (a token of
    /// an hour is refreshed a minute early, one of 3 s after 2 s).
    package var refreshAt: Date {
        guard let expiresAt else { return .distantFuture }
        let margin = min(60, max(0, expiresAt.timeIntervalSince(obtainedAt)) / 3)
        return expiresAt.addingTimeInterval(-margin)
    }

    /// The access token, while it needs no refresh and the grant did not fail.
    package func usableToken(at now: Date) -> OAuthAccessToken? {
        guard failure == nil, now < refreshAt else { return nil }
        return OAuthAccessToken(accessToken: accessToken, expiresAt: expiresAt, refreshAt: refreshAt)
    }
}
