import Synchronization
import WardenPolicyEngine

/// Policy engines already built from stored documents, by org, user and the documents' versions: a
/// decision parses nothing unless a policy changed. The versions come from PostgreSQL on every
/// decision, so replicas never disagree for longer than a query.
final class CompiledPolicies: Sendable {
    struct Key: Hashable {
        var org: String
        var user: String
        var versions: [Int]
    }

    static let maximumEntries = 10_000
    private let engines = Mutex<[Key: PolicyEngine]>([:])

    func engine(for key: Key) -> PolicyEngine? { engines.withLock { $0[key] } }

    func store(_ engine: PolicyEngine, for key: Key) {
        engines.withLock { engines in
            // Older versions of the same org and user are of no use any more.
            engines = engines.filter { $0.key.org != key.org || $0.key.user != key.user }
            if engines.count >= Self.maximumEntries { engines.removeAll(keepingCapacity: true) }
            engines[key] = engine
        }
    }
}
