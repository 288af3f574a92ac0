import Foundation
import WardenMCP
import Synchronization
import WardenNATS

/// One client session of the handshake era (`initialize` … `DELETE`). Stored in shared storage so
/// that any gateway replica can serve any request of it (no sticky sessions).
public struct MCPSession: Codable, Sendable, Equatable {
    public var id: String
    public var protocolVersion: String
    public var clientName: String?
    public var createdAt: Date
    /// The client capabilities declared in `initialize` that the gateway relays to (sampling,
    /// elicitation, roots): a server's request is only sent to a client that can answer it.
    public var clientCapabilities: [String]?
    /// When the session was last stored; rewritten now and then while it is used, so the bucket's
    /// TTL counts from the last use (idle sessions expire, busy ones do not).
    public var refreshedAt: Date?
    /// The agent (and its org) whose token started the session; only it may use the session.
    public var agent: String?
    public var org: String?

    /// 256 random bits from the system's CSPRNG, hex-encoded: unguessable, and a valid KV key.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Session ids the gateway issues look like this; anything else is rejected before a lookup.
    public static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == 64 && id.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}

/// Where sessions live. Replicas must share it.
public protocol MCPSessionStore: Sendable {
    func save(_ session: MCPSession) async throws
    func load(_ id: String) async throws -> MCPSession?
    func delete(_ id: String) async throws
}

/// Sessions in a NATS key-value bucket shared by every gateway replica; the bucket's TTL expires
/// old sessions. The bucket is created on first use, so the gateway starts even while NATS is down.
///
/// Sessions never change after `initialize`, so each replica keeps what it read for a few seconds:
/// the per-request lookup is then a dictionary read, not a KV round trip (which capped throughput).
/// A session deleted on another replica is still accepted here for at most `cacheLifetime`.
/// A session in use is stored again once per `ttl / 8`, so that the TTL measures idleness.
public final class NATSSessionStore: MCPSessionStore {
    public static let bucketName = "warden_gateway_sessions"
    let connection: NATSConnection
    let ttl: Duration
    let cacheLifetime: Duration
    private let bucket = Mutex<NATSKeyValueBucket?>(nil)
    private let cache = Mutex<[String: (session: MCPSession, until: ContinuousClock.Instant)]>([:])
    private static let cacheLimit = 50_000

    public init(connection: NATSConnection, ttl: Duration = .seconds(24 * 3600), cacheLifetime: Duration = .seconds(5)) {
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

    public func save(_ session: MCPSession) async throws {
        try await store().put(session.id, try JSONEncoder.sessions.encode(session))
        remember(session)
    }

    public func load(_ id: String) async throws -> MCPSession? {
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

    public func delete(_ id: String) async throws {
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
