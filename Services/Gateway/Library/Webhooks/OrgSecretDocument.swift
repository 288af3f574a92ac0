import Foundation
import Synchronization
import WardenContracts
import WardenServiceKit

/// A JSON document an org admin sets that holds credentials (approval channels, audit sinks): kept
/// in the vault as the org's secret at `path`, read through it and kept for `lifetime` (a change
/// made through another replica shows within it).
package final class OrgSecretDocument<Value: Codable & Sendable>: Sendable {
    let client: ServiceClient
    let path: String
    let description: String
    let lifetime: Duration
    private let cache = Mutex<[String: (value: Value?, until: ContinuousClock.Instant)]>([:])

    package init(client: ServiceClient, path: String, description: String, lifetime: Duration = .seconds(30)) {
        self.client = client
        self.path = path
        self.description = description
        self.lifetime = lifetime
    }

    /// The org's document; nil when none is set. `fresh`: read from the vault even if kept.
    package func value(org: String, fresh: Bool = false) async throws(ServiceError) -> Value? {
        if !fresh, let cached = cache.withLock({ $0[org] }), cached.until > .now { return cached.value }
        let value: Value?
        do throws(ServiceError) {
            let secret = try await client.call(SecretEndpoints.read, SecretReference(org: org, path: path))
            guard let data = Data(base64Encoded: secret.value), let decoded = try? EnvelopeCoding.decoder().decode(Value.self, from: data) else {
                throw ServiceError(.internal, "the org's \(path) cannot be read")
            }
            value = decoded
        } catch {
            guard error.code == .notFound else { throw error }
            value = nil
        }
        remember(value, org: org)
        return value
    }

    package func set(_ value: Value, org: String, actor: String) async throws(ServiceError) {
        let data: Data
        do { data = try EnvelopeCoding.encoder().encode(value) } catch { throw ServiceError(.badRequest, "the settings cannot be encoded") }
        _ = try await client.call(
            SecretEndpoints.write, SecretWrite(org: org, path: path, value: data.base64EncodedString(), description: description, actor: actor))
        remember(value, org: org)
    }

    /// Kept for `lifetime`; at most `capacity` orgs (names nobody uses must not grow the gateway).
    private func remember(_ value: Value?, org: String) {
        cache.withLock { cache in
            if cache.count >= Self.capacity { cache.removeAll(keepingCapacity: true) }
            cache[org] = (value, .now + lifetime)
        }
    }

    static var capacity: Int { 1_000 }
}
