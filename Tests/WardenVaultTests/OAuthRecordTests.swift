import Foundation
import Testing
import WardenContracts

@testable import WardenVault

@Suite struct OAuthRecordTests {
    func tokens(expiresIn: Double?, refresh: String? = nil) -> OAuthTokenResponse {
        var json = #"{"access_token": "at-1", "token_type": "Bearer""#
        if let expiresIn { json += #", "expires_in": \#(expiresIn)"# }
        if let refresh { json += #", "refresh_token": "\#(refresh)""# }
        // A test's own literal: it decodes.
        return (try? JSONDecoder().decode(OAuthTokenResponse.self, from: Data((json + "}").utf8)))!
    }

    @Test func aTokenIsRefreshedAThirdOfItsLifeEarlyAndAtMostAMinute() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let short = OAuthGrantRecord(tokens(expiresIn: 12), at: now)
        #expect(short.refreshAt == now.addingTimeInterval(8))
        #expect(short.usableToken(at: now.addingTimeInterval(7.9))?.accessToken == "at-1")
        #expect(short.usableToken(at: now.addingTimeInterval(8)) == nil)
        let hour = OAuthGrantRecord(tokens(expiresIn: 3600), at: now)
        #expect(hour.refreshAt == now.addingTimeInterval(3540))
        let forever = OAuthGrantRecord(tokens(expiresIn: nil), at: now)
        #expect(forever.usableToken(at: now.addingTimeInterval(1e7)) != nil)
        var failed = hour
        failed.failure = "refused"
        #expect(failed.usableToken(at: now) == nil, "a failed grant serves nothing")
    }

    @Test func aRotatedRefreshTokenReplacesTheOldOneAndAMissingOneKeepsIt() {
        let now = Date()
        #expect(OAuthGrantRecord(tokens(expiresIn: 60, refresh: "rt-2"), keeping: "rt-1", at: now).refreshToken == "rt-2")
        #expect(OAuthGrantRecord(tokens(expiresIn: 60), keeping: "rt-1", at: now).refreshToken == "rt-1")
    }

    @Test func clientsNeedHTTPSEndpointsAndPrintableIDs() {
        func settings(
            authorize: String = "https://github.com/login/oauth/authorize", token: String = "https://github.com/login/oauth/access_token",
            id: String = "Iv1.abc", secret: String? = "s3cret-value", scopes: [String] = ["repo"], name: String = "github"
        ) -> OAuthClientSettings {
            OAuthClientSettings(
                org: "acme", name: name, clientID: id, clientSecret: secret, authorizeURL: authorize, tokenURL: token, scopes: scopes, actor: "t")
        }
        #expect(throws: Never.self) { try OAuthClientRecord.validated(settings(), allowsLoopbackHTTP: false) }
        let loopback = settings(token: "http://127.0.0.1:9000/token")
        #expect(throws: Never.self) { try OAuthClientRecord.validated(loopback, allowsLoopbackHTTP: true) }
        #expect(throws: ServiceError.self, "plain http to this machine only when told") {
            try OAuthClientRecord.validated(loopback, allowsLoopbackHTTP: false)
        }
        for bad in [
            settings(token: "http://github.com/token"), settings(authorize: "https://user:pw@github.com/a"), settings(authorize: "ftp://x/a"),
            settings(token: "https://10.0.0.5/token"), settings(token: "https://169.254.169.254/latest"), settings(token: "https://[::1]/t"),
            settings(token: "https://192.168.1.1/t"), settings(token: "https://localhost/t"), settings(token: "https://[fd00::1]/t"),
            settings(id: "has space"), settings(secret: ""), settings(scopes: ["a b"]), settings(name: "a/b"), settings(name: ""),
        ] {
            #expect(throws: ServiceError.self, "\(bad.authorizeURL) \(bad.tokenURL)") {
                try OAuthClientRecord.validated(bad, allowsLoopbackHTTP: true)
            }
        }
        #expect(!OAuthClientRecord.isPrivateAddress("8.8.8.8") && !OAuthClientRecord.isPrivateAddress("github.com"))
    }

    @Test func connectionRecordsAreRecognisedWhereverTheyLive() {
        #expect(OAuthPaths.isManaged("oauth/github/grant"))
        #expect(OAuthPaths.isManaged("users/u1/oauth/github/grant"))
        #expect(!OAuthPaths.isManaged("github/oauth"))
        #expect(!OAuthPaths.isManaged("users/u1/github/token"))
    }

    @Test func formValuesAreEncodedAndProviderWordsCleaned() {
        #expect(OAuthTokenEndpoint.formEncode("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9")
        #expect(OAuthTokenEndpoint.printable("bad\n\"grant\"\u{7}é", 64) == "badgrant")
        #expect(OAuthConnections.redact("token rt-secret-1 is revoked", ["rt-secret-1", nil]) == "token [redacted] is revoked")
    }
}
