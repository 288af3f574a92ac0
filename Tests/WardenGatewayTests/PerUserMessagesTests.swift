import Synchronization
import Testing
import WardenMCP

@testable import WardenGateway

/// What a per-user server's instance may send on its own: only progress passes (it finds its call
/// by token); what the gateway would route by server alone, and so perhaps to another user, does not.
@Suite struct PerUserMessagesTests {
    final class RecordingTransport: DownstreamTransport, @unchecked Sendable {
        let serverID = "mine"
        let sent = Mutex<[JSONRPCMessage]>([])
        let incoming = AsyncStream<JSONRPCMessage> { $0.finish() }
        func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue { .null }
        func send(_ message: JSONRPCMessage) async throws { sent.withLock { $0.append(message) } }
        func cancelled(_ id: Int, reason: String) {}
    }

    @Test func onlyProgressPassesAndTheServersOwnRequestsAreRefused() async {
        let passed = Mutex<[String]>([])
        let handler = DownstreamRegistry.userScoped { _, message, _ in passed.withLock { $0.append(message.method ?? "") } }
        let transport = RecordingTransport()
        for message: JSONRPCMessage in [
            .notification(method: "notifications/progress", params: .object([("progressToken", .number("7")), ("progress", .number("1"))])),
            .notification(method: "notifications/message", params: .object([("data", .string("a log line"))])),
            .notification(method: "notifications/resources/updated", params: .object([("uri", .string("file:///mine"))])),
            .request(id: .number("1"), method: "sampling/createMessage", params: .object([])),
            .request(id: .number("2"), method: "elicitation/create", params: .object([])),
        ] {
            await handler("mine", message, transport)
        }
        #expect(passed.withLock { $0 } == ["notifications/progress"])
        let refusals = transport.sent.withLock { $0 }
        #expect(refusals.count == 2)
        #expect(refusals.allSatisfy { if case .error = $0 { true } else { false } })
    }
}
