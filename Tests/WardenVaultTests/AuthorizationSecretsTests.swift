import Crypto
import Foundation
import Testing
import WardenIdentity

@testable import WardenVault

/// Passwords, PKCE and the keys failed sign-ins are counted under (no database).
@Suite struct AuthorizationSecretsTests {
    @Test func passwordsAreScryptHashesThatSayTheirCost() async throws {
        let hash = try await PasswordHash.make("correct horse battery staple")
        #expect(hash.logN == 15 && hash.r == 8 && hash.p == 1 && hash.salt.count == 16 && hash.hash.count == 32)
        #expect(hash.encoded.hasPrefix("scrypt$15$8$1$"))
        let decoded = try #require(PasswordHash(encoded: hash.encoded))
        #expect(decoded == hash)
        #expect(try await decoded.matches("correct horse battery staple"))
        #expect(try await !decoded.matches("correct horse battery stapler"))
        let again = try await PasswordHash.make("correct horse battery staple")
        #expect(again.salt != hash.salt && again.hash != hash.hash, "a fresh salt each time")
        for broken in ["", "bcrypt$10$x", "scrypt$15$8$1$AAAA", "scrypt$30$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA", hash.encoded + "x"] {
            #expect(PasswordHash(encoded: broken) == nil, "\(broken)")
        }
    }

    @Test func passwordsHaveTwelveCharactersAtLeast() {
        #expect(throws: Never.self) { try PasswordHash.check("twelve chars") }
        #expect(throws: (any Error).self) { try PasswordHash.check("eleven char") }
        #expect(throws: (any Error).self) { try PasswordHash.check(String(repeating: "x", count: 1025)) }
    }

    @Test func pkceVerifiersMatchTheirS256Challenge() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        #expect(AuthorizationGrants.pkceMatches(verifier: verifier, challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        #expect(!AuthorizationGrants.pkceMatches(verifier: verifier, challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"))
        // Verifiers outside RFC 7636's alphabet or length are refused even with their own challenge.
        func challenge(_ verifier: String) -> String { Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8)))) }
        for verifier in ["short", String(repeating: "a", count: 42), String(repeating: "a", count: 129), String(repeating: "+", count: 43)] {
            #expect(!AuthorizationGrants.pkceMatches(verifier: verifier, challenge: challenge(verifier)), "\(verifier.prefix(8))…")
        }
        for verifier in [String(repeating: "a", count: 43), String(repeating: "~", count: 128)] {
            #expect(AuthorizationGrants.pkceMatches(verifier: verifier, challenge: challenge(verifier)))
        }
    }

    @Test func failedSignInsAreCountedPerAccountAndPerAddressIPv6ByItsSlash64() {
        #expect(SignIns.accountKey("acme", "Ada@Acme.Example") == "account:acme/ada@acme.example")
        #expect(SignIns.addressKey("192.0.2.7") == "address:192.0.2.7")
        #expect(SignIns.addressKey("2001:db8:1:2:3:4:5:6") == "address:2001:0db8:0001:0002::/64")
        #expect(SignIns.addressKey("2001:db8:1:2:ffff::1") == SignIns.addressKey("2001:db8:1:2::9"))
        #expect(SignIns.addressKey("::ffff:192.0.2.7") == "address:192.0.2.7", "an IPv4 client on a dual-stack socket")
        #expect(SignIns.minutes(61) == "2 minutes" && SignIns.minutes(30) == "1 minute")
    }
}
