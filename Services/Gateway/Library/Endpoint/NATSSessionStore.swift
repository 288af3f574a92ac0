import Foundation
import Synchronization
import WardenMCP
import WardenNATS

/// Sessions in a NATS key-value bucket shared by every gateway replica; the bucket's TTL expires
/// old sessions. The bucket is created on first use, so the gateway starts even while NATS is down.
///
/// Sessions never change after `initialize`, so each replica keeps what it read for a few seconds:
/// the per-request lookup is then a dictionary read, not a KV round trip (which capped throughput).
/// A session deleted on another replica is still accepted here for at most `cacheLifetime`.
/// A session in use is stored again once per `ttl / 8`, so that the TTL measures idleness.
package final class NATSSessionStore: MCPSessionStore {
    package static let bucketName = "warden_gateway_sessions"
    let connection: NATSConnection
    let ttl: Duration
    let cacheLifetime: Duration
    private let bucket = Mutex<NATSKeyValueBucket?>(nil)
    private let cache = Mutex<[String: (session: MCPSession, until: ContinuousClock.Instant)]>([:])
    private static let cacheLimit = 50_000

    package init(connection: NATSConnection, ttl: Duration = .seconds(24 * 3600), cacheLifetime: Duration = .seconds(5)) {
        self.connection = connection
        self.ttl = ttl
        self.cacheLifetime = cacheLifetime
    }

    private func remember(_ session: MCPSession) {
        let until = ContinuousClock.now + cacheLifetime
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[session.id] = (session, until)
        }
    }

    private func store() async throws -> NATSKeyValueBucket {
        if let bucket = bucket.withLock({ $0 }) { return bucket }
        let created = try await connection.keyValueBucket(KeyValueBucketSpec(name: Self.bucketName, history: 1, ttl: ttl))
        bucket.withLock { $0 = created }
        return created
    }

    package func save(_ session: MCPSession) async throws {
        try await store().put(session.id, try JSONEncoder.sessions.encode(session))
        remember(session)
    }

    package func load(_ id: String) async throws -> MCPSession? {
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0[id] }), cached.until > now { return cached.session }
        guard let entry = try await store().get(id) else { return nil }
        var session = try JSONDecoder.sessions.decode(MCPSession.self, from: entry.value)
        let refreshEvery = Double(ttl.components.seconds) / 8
        if Date().timeIntervalSince(session.refreshedAt ?? session.createdAt) > refreshEvery {
            session.refreshedAt = Date()
            _ = try? await store().update(id, try JSONEncoder.sessions.encode(session), expectedRevision: entry.revision)
        }
        remember(session)
        return session
    }

    package func delete(_ id: String) async throws {
        _ = cache.withLock { $0.removeValue(forKey: id) }
        try await store().delete(id)
    }
}

extension JSONEncoder {
    static let sessions: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()
}

extension JSONDecoder {
    static let sessions: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
