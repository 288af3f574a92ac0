import Foundation
import JWTKit

/// The claims of a token from an external identity provider: the registered ones Warden checks,
/// and every string claim, for mapping to a user and an agent.
public struct ExternalClaims: JWTPayload {
    public var iss: String?
    public var aud: [String]
    public var exp: Int64?
    public var nbf: Int64?
    public var strings: [String: String]
    /// Claims that are arrays of strings (roles, groups).
    public var lists: [String: [String]]
    /// Claims that are booleans (`email_verified`).
    public var flags: [String: Bool]

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        var strings: [String: String] = [:], lists: [String: [String]] = [:], flags: [String: Bool] = [:]
        for key in container.allKeys {
            if let value = try? container.decode(String.self, forKey: key) {
                strings[key.stringValue] = value
            } else if let values = try? container.decode([String].self, forKey: key) {
                lists[key.stringValue] = values
            } else if let flag = try? container.decode(Bool.self, forKey: key) {
                flags[key.stringValue] = flag
            }
        }
        self.strings = strings
        self.lists = lists
        self.flags = flags
        iss = strings["iss"]
        if let single = strings["aud"] {
            aud = [single]
        } else {
            aud = (try? container.decode([String].self, forKey: Key(stringValue: "aud"))) ?? []
        }
        exp = try? container.decode(Int64.self, forKey: Key(stringValue: "exp"))
        nbf = try? container.decode(Int64.self, forKey: Key(stringValue: "nbf"))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (key, value) in strings { try container.encode(value, forKey: Key(stringValue: key)) }
        for (key, value) in lists { try container.encode(value, forKey: Key(stringValue: key)) }
        for (key, value) in flags { try container.encode(value, forKey: Key(stringValue: key)) }
    }

    /// The values of a roles or groups claim: an array of strings, or one string separated by
    /// spaces or commas (providers do both).
    public func values(of claim: String) -> [String] {
        if let list = lists[claim] { return list.filter { !$0.isEmpty } }
        return strings[claim].map { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) } ?? []
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies a token from a trusted external provider against the provider's JWKS, issuer and the
/// audience Warden was registered with. Any algorithm the JWKS' keys use is accepted (RSA, EC,
/// EdDSA); `none` and shared-secret algorithms never are (a JWKS holds no such keys).
public enum FederatedTokenVerifier {
    /// The issuer the token claims, read without verification (to find the trust to verify it with).
    public static func claimedIssuer(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= AgentTokenValidator.maximumTokenBytes, let payload = Base64URL.decode(String(parts[1])),
            let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any]
        else { return nil }
        return object["iss"] as? String
    }

    public static func verify(_ token: String, jwks: String, issuer: String, audience: String, now: Date = Date(), leeway: Int64 = 30)
        async throws(TokenRejection) -> ExternalClaims
    {
        let keys = JWTKeyCollection()
        do {
            try await keys.add(jwksJSON: jwks)
        } catch {
            throw .invalid("the trusted provider's JWKS cannot be used")
        }
        let claims: ExternalClaims
        do {
            claims = try await keys.verify(token, as: ExternalClaims.self)
        } catch {
            throw .invalid("the token's signature does not verify with the provider's keys", cause: .badSignature)
        }
        let seconds = Int64(now.timeIntervalSince1970)
        guard claims.iss == issuer else { throw .invalid("the token was issued by another issuer") }
        guard claims.aud.contains(audience) else { throw .invalid("the token is not for Warden's audience") }
        guard let exp = claims.exp, exp + leeway > seconds else { throw .invalid("the token expired") }
        guard (claims.nbf ?? 0) - leeway <= seconds else { throw .invalid("the token is not valid yet") }
        return claims
    }
}
