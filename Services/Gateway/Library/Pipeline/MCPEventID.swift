import Foundation
import Logging
import Synchronization
import WardenMCP
import WardenNATS

/// An SSE event id: the stream it belongs to and its position in the shared log. Opaque to clients;
/// they send it back in `Last-Event-ID` to resume. A value type without I/O.
package struct MCPEventID: Sendable, Equatable, CustomStringConvertible {
    /// Random, per SSE stream: 16 hex digits.
    package var stream: String
    /// The event log's sequence number.
    package var sequence: UInt64

    package init(stream: String, sequence: UInt64) {
        self.stream = stream
        self.sequence = sequence
    }

    package init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, Self.isStreamID(String(parts[0])), let sequence = UInt64(parts[1]), sequence > 0 else { return nil }
        self.init(stream: String(parts[0]), sequence: sequence)
    }

    package var description: String { "\(stream)-\(sequence)" }

    package static func newStream() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%016llx", generator.next() as UInt64)
    }

    static func isStreamID(_ text: String) -> Bool {
        text.utf8.count == 16
            && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}
