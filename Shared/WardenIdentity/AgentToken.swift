import Crypto
import Foundation
import JWTKit
import Synchronization

/// The claims of a Warden agent access token: which agent (`sub`) acts for which user (`usr`) in
/// which org (`org`), for which resource (`aud`), with which scopes, until when.
public struct AgentTokenClaims: JWTPayload, Equatable {
    public var iss: String
    /// The resource the token is for: the gateway's resource URL.
    public var aud: String
    /// The agent (instance) the token was issued to.
    public var sub: String
    public var org: String
    /// The user the agent acts for.
    public var usr: String
    /// Space-separated scopes (RFC 8693 style).
    public var scope: String
    /// Unique per token: what revoking one token names.
    public var jti: String
    public var iat: Int64
    public var nbf: Int64
    public var exp: Int64
    /// Roles the caller's identity provider gave it (federated tokens only), for policy.
    public var roles: [String]?
    /// The client application the token was issued to (RFC 9068 `client_id`): the API key it was
    /// exchanged for, for policy rules per client.
    public var clientID: String?

    enum CodingKeys: String, CodingKey {
        case iss, aud, sub, org, usr, scope, jti, iat, nbf, exp, roles
        case clientID = "client_id"
    }

    public init(
        iss: String, aud: String, sub: String, org: String, usr: String, scope: String, jti: String, iat: Int64, nbf: Int64, exp: Int64,
        roles: [String]? = nil, clientID: String? = nil
    ) {
        self.clientID = clientID
        self.iss = iss
        self.aud = aud
        self.sub = sub
        self.org = org
        self.usr = usr
        self.scope = scope
        self.jti = jti
        self.iat = iat
        self.nbf = nbf
        self.exp = exp
        self.roles = roles
    }

    public var scopes: Set<String> { Set(scope.split(separator: " ").map(String.init)) }

    /// Claims are checked by `AgentTokenValidator` (with its clock and precise errors), not here.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Why a token was refused: an OAuth error code and a precise description, safe to return in
/// `WWW-Authenticate` and JSON bodies (it never echoes the token).
public struct TokenRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// RFC 6750: malformed, expired, revoked, wrong issuer or audience, bad signature. HTTP 401.
        case invalidToken = "invalid_token"
        /// RFC 6750: valid, but without the scope the request needs. HTTP 403.
        case insufficientScope = "insufficient_scope"
    }

    /// What a caller may act on (fetch keys again, say); never a branch on `description`.
    public enum Cause: Sendable, Equatable {
        /// Signed by a key id the verifier does not know: the issuer may have rotated its keys.
        case unknownKey
        /// The signature does not verify with the keys at hand.
        case badSignature
        case other
    }

    public var code: Code
    public var cause: Cause
    public var description: String

    public init(_ code: Code, _ description: String, cause: Cause = .other) {
        self.code = code
        self.cause = cause
        self.description = description
    }

    public static func invalid(_ description: String, cause: Cause = .other) -> Self { Self(.invalidToken, description, cause: cause) }
}

/// One Ed25519 signing key with its id. The private half lives in the vault.
public struct SigningKey: Sendable {
    public let kid: String
    public let privateKey: Curve25519.Signing.PrivateKey

    public init(kid: String, privateKey: Curve25519.Signing.PrivateKey = Curve25519.Signing.PrivateKey()) {
        self.kid = kid
        self.privateKey = privateKey
    }

    public var publicKey: VerificationKey { VerificationKey(kid: kid, rawPublicKey: Array(privateKey.publicKey.rawRepresentation)) }
}

/// One public key that validates tokens, as published in the JWKS.
public struct VerificationKey: Sendable, Equatable, Codable {
    public let kid: String
    public let rawPublicKey: [UInt8]

    public init(kid: String, rawPublicKey: [UInt8]) {
        self.kid = kid
        self.rawPublicKey = rawPublicKey
    }

    /// The key as a JWK (RFC 8037: OKP, Ed25519).
    public var jwk: [String: String] {
        ["kty": "OKP", "crv": "Ed25519", "x": Base64URL.encode(rawPublicKey), "kid": kid, "alg": "EdDSA", "use": "sig"]
    }

    /// `/.well-known/jwks.json` for a set of keys.
    public static func jwks(_ keys: [VerificationKey]) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(["keys": keys.map(\.jwk)])) ?? Data(#"{"keys":[]}"#.utf8)
    }

    /// Keys from a JWKS document: Ed25519 keys with an id are kept, anything else is skipped.
    public static func fromJWKS(_ data: Data) -> [VerificationKey] {
        struct Document: Decodable { var keys: [[String: String]] }
        guard let document = try? JSONDecoder().decode(Document.self, from: data) else { return [] }
        return document.keys.compactMap { jwk in
            guard jwk["kty"] == "OKP", jwk["crv"] == "Ed25519", let kid = jwk["kid"], let x = jwk["x"], let raw = Base64URL.decode(x), raw.count == 32
            else { return nil }
            return VerificationKey(kid: kid, rawPublicKey: raw)
        }
    }
}

/// Signs agent tokens.
public struct AgentTokenIssuer: Sendable {
    public static let defaultLifetime: Duration = .seconds(15 * 60)
    let key: SigningKey
    let keys: JWTKeyCollection

    public init(key: SigningKey) async {
        self.key = key
        keys = JWTKeyCollection()
        await keys.add(eddsa: EdDSA.PrivateKey(backing: key.privateKey), kid: JWKIdentifier(string: key.kid))
    }

    /// A signed token for `claims` (whose `jti`, times and issuer the caller has set).
    public func sign(_ claims: AgentTokenClaims) async throws -> String {
        var header = JWTHeader()
        header.typ = "at+jwt"
        return try await keys.sign(claims, kid: JWKIdentifier(string: key.kid), header: header)
    }

    /// 128 random bits, hex: a token id.
    public static func newTokenID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%016llx%016llx", generator.next() as UInt64, generator.next() as UInt64)
    }
}

/// Validates agent tokens locally, with the public keys it was given (cached from the JWKS): no
/// network round trip per request. Refuses anything but EdDSA (so `none`, and an HMAC "signed"
/// with our public key, never pass), unknown key ids, bad signatures, another issuer or audience,
/// expired or not-yet-valid tokens (30 s leeway for clock skew), oversized input, and revoked ids.
///
/// An agent presents the same token on every request for its lifetime, so a token whose signature
/// and claims were checked is remembered (at most `cacheLimit`, until it expires): later requests
/// cost a dictionary read, not a signature verification. Times and revocation are checked on every
/// request, cached or not.
public final class AgentTokenValidator: Sendable {
    public static let maximumTokenBytes = 8 << 10
    public static let cacheLimit = 100_000
    public let issuer: String
    public let audience: String
    public let leeway: Int64
    let keys: JWTKeyCollection
    let knownKeyIDs: Set<String>
    private let verified = Mutex<[String: AgentTokenClaims]>([:])

    public init(issuer: String, audience: String, keys: [VerificationKey], leeway: Int64 = 30) async throws {
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        let collection = JWTKeyCollection()
        for key in keys {
            let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: key.rawPublicKey)
            await collection.add(eddsa: EdDSA.PublicKey(backing: publicKey), kid: JWKIdentifier(string: key.kid))
        }
        self.keys = collection
        self.knownKeyIDs = Set(keys.map(\.kid))
    }

    struct Header: Decodable {
        var alg: String?
        var kid: String?
    }

    /// The token's claims, or why it is refused. `isRevoked` is asked last, with the token id.
    public func validate(_ token: String, now: Date = Date(), isRevoked: (AgentTokenClaims) -> Bool = { _ in false }) async throws(TokenRejection)
        -> AgentTokenClaims
    {
        let claims: AgentTokenClaims
        if let known = verified.withLock({ $0[token] }) {
            claims = known
        } else {
            claims = try await verifySignature(token)
            verified.withLock { cache in
                if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
                cache[token] = claims
            }
        }
        let seconds = Int64(now.timeIntervalSince1970)
        guard claims.exp + leeway > seconds else {
            _ = verified.withLock { $0.removeValue(forKey: token) }
            throw .invalid("the token expired")
        }
        guard claims.nbf - leeway <= seconds else { throw .invalid("the token is not valid yet") }
        guard !isRevoked(claims) else { throw .invalid("the token was revoked") }
        return claims
    }

    /// Structure, algorithm, key, signature, issuer, audience and required claims: what does not
    /// change while the token lives.
    func verifySignature(_ token: String) async throws(TokenRejection) -> AgentTokenClaims {
        guard token.utf8.count <= Self.maximumTokenBytes else { throw .invalid("the token is larger than \(Self.maximumTokenBytes) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { throw .invalid("the token is not a signed JWT (three non-empty parts)") }
        guard let headerBytes = Base64URL.decode(String(parts[0])), let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes))
        else {
            throw .invalid("the token's header is not valid base64url JSON")
        }
        guard header.alg == "EdDSA" else {
            throw .invalid("algorithm \(header.alg.map { "'\($0.prefix(16))'" } ?? "(none)") is not accepted; tokens are signed with EdDSA")
        }
        guard let kid = header.kid, knownKeyIDs.contains(kid) else {
            throw .invalid("the token was not signed by a key of this issuer (unknown kid)", cause: .unknownKey)
        }
        let claims: AgentTokenClaims
        do {
            claims = try await keys.verify(token, as: AgentTokenClaims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .invalid("the signature is not valid", cause: .badSignature)
        } catch {
            throw .invalid("the token's claims are missing or malformed")
        }
        guard claims.iss == issuer else { throw .invalid("the token was issued by another issuer") }
        guard claims.aud == audience else { throw .invalid("the token is for another audience") }
        guard !claims.sub.isEmpty, !claims.org.isEmpty, !claims.usr.isEmpty, !claims.jti.isEmpty else {
            throw .invalid("the token's claims are missing or malformed")
        }
        return claims
    }
}

/// Base64url without padding (RFC 7515), as JWTs and JWKs use it.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(
            of: "=", with: "")
    }

    public static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "=") }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
