import WardenMCP

/// A stream being resumed, opened but not yet read: `run` hands each event to `deliver`, in order,
/// until the final one (or the stream goes idle or is abandoned), and returns. Whatever reads and
/// watches the log runs in child tasks of the caller's task, so nothing outlives the response
/// that writes the events.
package struct EventReplay: Sendable {
    package let run: @Sendable (_ deliver: (LoggedEvent) async throws -> Void) async throws -> Void

    package init(run: @escaping @Sendable (_ deliver: (LoggedEvent) async throws -> Void) async throws -> Void) {
        self.run = run
    }
}
