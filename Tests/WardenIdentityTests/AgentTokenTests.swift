import Crypto
import Foundation
import Testing
import WardenIdentity

/// Agent tokens: signed by one key, validated locally; every kind of bad token is refused with a
/// precise reason.
@Suite struct AgentTokenTests {
    static let issuer = "https://warden.example"
    static let audience = "https://warden.example/mcp"
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let key = SigningKey(kid: "k1")

    func claims(_ change: (inout AgentTokenClaims) -> Void = { _ in }) -> AgentTokenClaims {
        let seconds = Int64(now.timeIntervalSince1970)
        var claims = AgentTokenClaims(
            iss: Self.issuer, aud: Self.audience, sub: "agent:a1", org: "org:acme", usr: "user:ada", scope: "mcp:tools mcp:resources",
            jti: AgentTokenIssuer.newTokenID(), iat: seconds, nbf: seconds, exp: seconds + 900
        )
        change(&claims)
        return claims
    }

    func validator(keys: [VerificationKey]? = nil) async throws -> AgentTokenValidator {
        try await AgentTokenValidator(issuer: Self.issuer, audience: Self.audience, keys: keys ?? [key.publicKey])
    }

    func rejection(_ token: String, revoked: Bool = false) async throws -> String? {
        let validator = try await validator()
        do throws(TokenRejection) {
            _ = try await validator.validate(token, now: now) { _ in revoked }
            return nil
        } catch {
            #expect(error.code == .invalidToken)
            return error.description
        }
    }

    /// Why `token` was refused, as callers branch on it (nil: accepted).
    func cause(_ token: String) async throws -> TokenRejection.Cause? {
        let validator = try await self.validator()
        do throws(TokenRejection) {
            _ = try await validator.validate(token, now: now)
            return nil
        } catch {
            return error.cause
        }
    }

    @Test func aTokenIssuedHereValidatesWithItsClaims() async throws {
        let issued = claims()
        let token = try await AgentTokenIssuer(key: key).sign(issued)
        let validated = try await validator().validate(token, now: now)
        #expect(validated == issued)
        #expect(validated.scopes == ["mcp:tools", "mcp:resources"])
    }

    @Test func badTokensAreRefusedWithAPreciseReason() async throws {
        let issuer = await AgentTokenIssuer(key: key)
        let good = try await issuer.sign(claims())
        let parts = good.split(separator: ".").map(String.init)

        // Forged: signed by another key under our key id.
        let forged = try await AgentTokenIssuer(key: SigningKey(kid: "k1")).sign(claims())
        #expect(try await rejection(forged) == "the signature is not valid")
        // A payload changed after signing.
        let tampered = [parts[0], Base64URL.encode(Array(#"{"iss":"x"}"#.utf8)), parts[2]].joined(separator: ".")
        #expect(try await rejection(tampered) != nil)
        // alg: none, with or without a signature.
        let none = Base64URL.encode(Array(#"{"alg":"none","kid":"k1"}"#.utf8))
        #expect(try await rejection("\(none).\(parts[1]).") == "the token is not a signed JWT (three non-empty parts)")
        #expect(try await rejection("\(none).\(parts[1]).\(parts[2])")?.contains("'none' is not accepted") == true)
        // HMAC "signed" with our public key as the secret (algorithm confusion).
        let hsHeader = Base64URL.encode(Array(#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#.utf8))
        let input = "\(hsHeader).\(parts[1])"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: key.publicKey.rawPublicKey))
        #expect(try await rejection("\(input).\(Base64URL.encode(Array(mac)))")?.contains("'HS256' is not accepted") == true)
        // Unknown key id.
        let stranger = try await AgentTokenIssuer(key: SigningKey(kid: "k9")).sign(claims())
        #expect(try await rejection(stranger)?.contains("unknown kid") == true)
        // Callers act on the cause (fetch keys again), never on the text.
        #expect(try await cause(stranger) == .unknownKey)
        #expect(try await cause(forged) == .badSignature)
        // Times, issuer, audience.
        #expect(try await rejection(issuer.sign(claims { $0.exp = $0.iat - 60 })) == "the token expired")
        #expect(try await rejection(issuer.sign(claims { $0.nbf = $0.iat + 600 })) == "the token is not valid yet")
        #expect(try await rejection(issuer.sign(claims { $0.aud = "https://other.example/mcp" })) == "the token is for another audience")
        #expect(try await rejection(issuer.sign(claims { $0.iss = "https://evil.example" })) == "the token was issued by another issuer")
        // Revoked.
        #expect(try await rejection(good, revoked: true) == "the token was revoked")
        // Malformed and oversized.
        for garbage in ["", "abc", "a.b", "a.b.c.d", "!!.??.**", String(repeating: "x", count: 10_000)] {
            #expect(try await rejection(garbage) != nil, "\(garbage.prefix(20))")
        }
        #expect(try await rejection(String(repeating: "a", count: 9_000) + ".b.c")?.contains("larger than") == true)
    }

    @Test func aRememberedTokenIsStillCheckedForTimeAndRevocation() async throws {
        let token = try await AgentTokenIssuer(key: key).sign(claims())
        let validator = try await validator()
        _ = try await validator.validate(token, now: now)
        await #expect(throws: TokenRejection.invalid("the token was revoked")) { try await validator.validate(token, now: now) { _ in true } }
        await #expect(throws: TokenRejection.invalid("the token expired")) { try await validator.validate(token, now: now.addingTimeInterval(3_600)) }
        // A token refused once is not remembered as good.
        let forged = try await AgentTokenIssuer(key: SigningKey(kid: "k1")).sign(claims())
        for _ in 0..<2 {
            await #expect(throws: TokenRejection.invalid("the signature is not valid", cause: .badSignature)) {
                try await validator.validate(forged, now: now)
            }
        }
    }

    @Test func clockSkewWithinTheLeewayIsTolerated() async throws {
        let token = try await AgentTokenIssuer(key: key).sign(
            claims {
                $0.exp = $0.iat - 10; $0.nbf = $0.iat + 10
            })
        #expect(try await validator().validate(token, now: now).sub == "agent:a1")
    }

    @Test func rotatedKeysOverlap() async throws {
        let next = SigningKey(kid: "k2")
        let old = try await AgentTokenIssuer(key: key).sign(claims())
        let new = try await AgentTokenIssuer(key: next).sign(claims())
        let both = try await validator(keys: [key.publicKey, next.publicKey])
        #expect(try await both.validate(old, now: now).jti != both.validate(new, now: now).jti)
    }

    @Test func theJWKSRoundTripsAndHoldsNoPrivateKey() throws {
        let document = VerificationKey.jwks([key.publicKey, SigningKey(kid: "k2").publicKey])
        let text = String(decoding: document, as: UTF8.self)
        #expect(text.contains(#""kty":"OKP""#) && text.contains(#""alg":"EdDSA""#) && !text.contains(#""d":"#))
        #expect(VerificationKey.fromJWKS(document).map(\.kid) == ["k1", "k2"])
        #expect(VerificationKey.fromJWKS(document).first == key.publicKey)
        #expect(VerificationKey.fromJWKS(Data("not json".utf8)).isEmpty)
    }
}

@Suite struct ExternalClaimsTests {
    func claims(_ json: String) throws -> ExternalClaims {
        try JSONDecoder().decode(ExternalClaims.self, from: Data(json.utf8))
    }

    @Test func rolesComeFromArraysOrSeparatedStrings() throws {
        let parsed = try claims(
            #"{"iss":"https://idp","aud":["a","b"],"exp":10,"groups":["ops","","dev"],"roles":"approver auditor,viewer","email":"x@y"}"#)
        #expect(parsed.aud == ["a", "b"] && parsed.exp == 10 && parsed.iss == "https://idp")
        #expect(parsed.values(of: "groups") == ["ops", "dev"])
        #expect(parsed.values(of: "roles") == ["approver", "auditor", "viewer"])
        #expect(parsed.values(of: "missing").isEmpty)
        #expect(parsed.strings["email"] == "x@y")
    }

    @Test func booleanClaimsAreKeptForChecks() throws {
        let parsed = try claims(#"{"email":"x@y","email_verified":false,"admin":true,"n":3}"#)
        #expect(parsed.flags == ["email_verified": false, "admin": true])
        #expect(parsed.strings["email_verified"] == nil)
    }

    @Test func rolesAreCarriedInWardenTokensOnlyWhenPresent() throws {
        let plain = AgentTokenClaims(iss: "i", aud: "a", sub: "s", org: "o", usr: "u", scope: "mcp", jti: "j", iat: 1, nbf: 1, exp: 2)
        #expect(!String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("roles"))
        var federated = plain
        federated.roles = ["approver"]
        let decoded = try JSONDecoder().decode(AgentTokenClaims.self, from: try JSONEncoder().encode(federated))
        #expect(decoded.roles == ["approver"])
    }
}

@Suite struct PrivateFileTests {
    @Test func aCredentialFileIsOwnerOnlyAndNeverReplacedUnlessAsked() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("warden-private-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PrivateFile.write("first\n", to: path, replacing: false)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        #expect(throws: PrivateFile.WriteError.self) { try PrivateFile.write("second\n", to: path, replacing: false) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        try PrivateFile.write("third\n", to: path, replacing: true)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "third\n")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600, "replacing makes it private again")
    }
}
