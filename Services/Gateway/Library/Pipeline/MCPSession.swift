import Foundation
import Synchronization
import WardenMCP
import WardenNATS

/// One client session of the handshake era (`initialize` … `DELETE`). Stored in shared storage so
/// that any gateway replica can serve any request of it (no sticky sessions).
package struct MCPSession: Codable, Sendable, Equatable {
    package var id: String
    package var protocolVersion: String
    package var clientName: String?
    package var createdAt: Date
    /// The client capabilities declared in `initialize` that the gateway relays to (sampling,
    /// elicitation, roots): a server's request is only sent to a client that can answer it.
    package var clientCapabilities: [String]?
    /// When the session was last stored; rewritten now and then while it is used, so the bucket's
    /// TTL counts from the last use (idle sessions expire, busy ones do not).
    package var refreshedAt: Date?
    /// The agent (and its org) whose token started the session; only it may use the session.
    package var agent: String?
    package var org: String?

    /// 256 random bits from the system's CSPRNG, hex-encoded: unguessable, and a valid KV key.
    package static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Session ids the gateway issues look like this; anything else is rejected before a lookup.
    package static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == 64
            && id.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}
