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
public final class NATSSessionStore: MCPSessionStore {
    public static let bucketName = "warden_gateway_sessions"
    let connection: NATSConnection
    let ttl: Duration
    private let bucket = Mutex<NATSKeyValueBucket?>(nil)

    public init(connection: NATSConnection, ttl: Duration = .seconds(24 * 3600)) {
        self.connection = connection
        self.ttl = ttl
    }

    private func store() async throws -> NATSKeyValueBucket {
        if let bucket = bucket.withLock({ $0 }) { return bucket }
        let created = try await connection.keyValueBucket(KeyValueBucketSpec(name: Self.bucketName, history: 1, ttl: ttl))
        bucket.withLock { $0 = created }
        return created
    }

    public func save(_ session: MCPSession) async throws {
        try await store().put(session.id, try JSONEncoder.sessions.encode(session))
    }

    public func load(_ id: String) async throws -> MCPSession? {
        guard let entry = try await store().get(id) else { return nil }
        return try JSONDecoder.sessions.decode(MCPSession.self, from: entry.value)
    }

    public func delete(_ id: String) async throws {
        try await store().delete(id)
    }
}

/// Process-local sessions, for unit tests only.
public final class InMemorySessionStore: MCPSessionStore {
    private let sessions = Mutex<[String: MCPSession]>([:])
    public init() {}
    public func save(_ session: MCPSession) async throws { sessions.withLock { $0[session.id] = session } }
    public func load(_ id: String) async throws -> MCPSession? { sessions.withLock { $0[id] } }
    public func delete(_ id: String) async throws { _ = sessions.withLock { $0.removeValue(forKey: id) } }
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
