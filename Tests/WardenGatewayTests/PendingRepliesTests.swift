import Testing
import WardenMCP

@testable import WardenGateway

/// Calls waiting for a downstream server's replies, without a process.
@Suite struct PendingRepliesTests {
    @Test func aServerThatDiesDuringACallFailsThatCallWithAnErrorNamingIt() async throws {
        let pending = PendingReplies(serverID: "time")
        let (sent, wasSent) = AsyncStream.makeStream(of: Int.self)
        async let outcome: Result<JSONValue, DownstreamError> = {
            do {
                return .success(
                    try await pending.call("tools/call", timeout: .seconds(30)) { id in
                        wasSent.yield(id)
                        return true
                    })
            } catch let error as DownstreamError {
                return .failure(error)
            } catch {
                return .failure(DownstreamError(.protocolViolation, server: "?", "unexpected \(error)"))
            }
        }()
        for await _ in sent { break }  // the request went out: the call is in flight
        pending.finish(DownstreamError(.unavailable, server: "time", "the process exited (killed)"))
        let failed = await outcome
        #expect(failed == .failure(DownstreamError(.unavailable, server: "time", "the process exited (killed)")))
        if case .failure(let error) = failed { #expect(error.description == "MCP server 'time': the process exited (killed)") }
        // Later calls fail at once, with the same reason.
        await #expect(throws: DownstreamError(.unavailable, server: "time", "the process exited (killed)")) {
            try await pending.call("tools/call", timeout: .seconds(30)) { _ in true }
        }
    }
}
