import ArgumentParser
import Crypto
import Foundation
import WardenIdentity

/// Agent token validation as the gateway does it on every request: local, with cached keys.
struct TokenValidationBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Agent token validation latency (local, cached keys).")

    @Option var requests = 20_000

    func run() async throws {
        let key = SigningKey(kid: "bench")
        let issuer = await AgentTokenIssuer(key: key)
        let now = Int64(Date().timeIntervalSince1970)
        let tokens = try await (0..<64).asyncMap { _ in
            try await issuer.sign(
                AgentTokenClaims(
                    iss: "https://warden.bench", aud: "https://warden.bench/mcp", sub: "agent:a", org: "org:o", usr: "user:u", scope: "mcp:tools",
                    jti: AgentTokenIssuer.newTokenID(), iat: now, nbf: now, exp: now + 900
                )
            )
        }
        let keys = [key.publicKey, SigningKey(kid: "next").publicKey]
        let clock = ContinuousClock()
        func us(_ d: Duration) -> String { String(format: "%.1f µs", Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6) }
        func report(_ name: String, _ samples: [Duration]) {
            let sorted = samples.sorted()
            print(
                "\(name): p50 \(us(sorted[sorted.count / 2])), p90 \(us(sorted[sorted.count * 9 / 10])), p99 \(us(sorted[sorted.count * 99 / 100]))")
        }
        // Every request of an agent's 15 minutes after its first: the token is known, times and
        // revocation are checked.
        let validator = try await AgentTokenValidator(issuer: "https://warden.bench", audience: "https://warden.bench/mcp", keys: keys)
        for token in tokens { _ = try await validator.validate(token) }
        var warm: [Duration] = []
        for index in 0..<requests {
            let start = clock.now
            _ = try await validator.validate(tokens[index % tokens.count]) { $0.jti.isEmpty }
            warm.append(clock.now - start)
        }
        report("token validation, a token seen before (\(requests) requests)", warm)
        // The first request with a new token: signature verification and claims.
        var cold: [Duration] = []
        for index in 0..<min(requests, 2_000) {
            let fresh = try await AgentTokenValidator(issuer: "https://warden.bench", audience: "https://warden.bench/mcp", keys: keys)
            let start = clock.now
            _ = try await fresh.validate(tokens[index % tokens.count])
            cold.append(clock.now - start)
        }
        report("token validation, a token's first use (EdDSA signature check)", cold)
        // Of which the Ed25519 signature check alone (swift-crypto), the floor of any first use.
        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: key.publicKey.rawPublicKey)
        var signatureOnly: [Duration] = []
        for index in 0..<min(requests, 2_000) {
            let parts = tokens[index % tokens.count].split(separator: ".")
            let input = Data("\(parts[0]).\(parts[1])".utf8)
            let signature = Base64URL.decode(String(parts[2])) ?? []
            let start = clock.now
            guard publicKey.isValidSignature(signature, for: input) else { throw ValidationError("signature did not verify") }
            signatureOnly.append(clock.now - start)
        }
        report("of which the Ed25519 signature check alone", signatureOnly)
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
