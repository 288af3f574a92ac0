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
