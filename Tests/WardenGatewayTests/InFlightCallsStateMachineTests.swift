import Testing
import WardenMCP

@testable import WardenGateway

/// The rules of calls in flight, with plain values for channels and jobs: no task, no I/O.
@Suite struct InFlightCallsStateMachineTests {
    typealias Machine = InFlightCallsStateMachine<String, Int>
    let caller = MCPCaller(protocolVersion: "2025-06-18", sessionID: "s1", clientName: "t", clientCapabilities: ["elicitation"])

    func progress(_ token: JSONValue) -> JSONRPCMessage {
        .notification(method: "notifications/progress", params: .object([("progressToken", token), ("progress", 1)]))
    }

    @Test func progressReachesOnlyTheCallWhoseTokenItCarriesWithTheClientsTokenBack() throws {
        var machine = Machine()
        let params = try JSONParser().parse(#"{"name":"slow","_meta":{"progressToken":7}}"#)
        let (a, forwardedA) = machine.begin(server: "s", params: params, channel: "a", caller: nil)
        let (_, forwardedB) = machine.begin(server: "s", params: params, channel: "b", caller: nil)
        let tokenA = try #require(forwardedA["_meta"]?["progressToken"])
        let tokenB = try #require(forwardedB["_meta"]?["progressToken"])
        #expect(tokenA != tokenB, "two clients may pick the same token; the server sees two")
        #expect(forwardedA["name"] == "slow", "the rest of the params is forwarded as it came")

        guard case .deliver("b", let message) = machine.notification(progress(tokenB), from: "s") else {
            Issue.record("progress for b was not delivered to b"); return
        }
        #expect(message == progress(7), "the client gets its own token back")
        guard case .drop = machine.notification(progress(tokenA), from: "other") else {
            Issue.record("a server reached another server's call"); return
        }
        machine.end(a)
        guard case .drop = machine.notification(progress(tokenA), from: "s") else {
            Issue.record("progress delivered after its call ended"); return
        }
    }

    @Test func aCallWithoutAProgressTokenKeepsItsParamsAndGetsNoProgress() {
        var machine = Machine()
        let (_, forwarded) = machine.begin(server: "s", params: .object([("name", "x")]), channel: "a", caller: nil)
        #expect(forwarded == .object([("name", "x")]))
        guard case .drop = machine.notification(progress("warden-1"), from: "s") else {
            Issue.record("a guessed token reached a call that asked for no progress"); return
        }
    }

    @Test func unattributableMessagesAndServerRequestsGoOnlyToASoleCall() {
        var machine = Machine()
        let log = JSONRPCMessage.notification(method: "notifications/message", params: .object([("level", "info")]))
        #expect(machine.requester(for: "s") == nil, "no call: nobody to ask")
        let (first, _) = machine.begin(server: "s", params: .object([]), channel: "a", caller: caller)
        guard case .deliver("a", log) = machine.notification(log, from: "s") else { Issue.record("the sole call missed the log"); return }
        #expect(machine.requester(for: "s")?.channel == "a")
        #expect(machine.requester(for: "s")?.caller == caller)
        #expect(machine.requester(for: "t") == nil, "another server's call is not asked")

        let (second, _) = machine.begin(server: "s", params: .object([]), channel: "b", caller: caller)
        guard case .drop = machine.notification(log, from: "s") else { Issue.record("two calls in flight: a log was guessed"); return }
        #expect(machine.requester(for: "s") == nil, "two calls in flight: never guess whom to ask")

        machine.end(first)
        #expect(machine.requester(for: "s")?.channel == "b", "one left: it is asked")
        machine.end(second)
        #expect(machine.count == 0)
    }

    @Test func aCancellationStopsTheJobServingThatRequestOnce() {
        var machine = Machine()
        let key = InFlightCalls.RequestKey(session: "s1", id: .number("3"))
        machine.started(key, job: 42)
        guard case .notHere = machine.cancel(InFlightCalls.RequestKey(session: "s2", id: .number("3"))) else {
            Issue.record("another session's request id cancelled this one"); return
        }
        guard case .cancel(42) = machine.cancel(key) else { Issue.record("the job was not cancelled"); return }
        guard case .notHere = machine.cancel(key) else { Issue.record("cancelled twice"); return }

        machine.finished(key)

        machine.started(key, job: 43)
        machine.finished(key)
        guard case .notHere = machine.cancel(key) else { Issue.record("a finished request was cancelled"); return }
    }

    @Test func aJobThatEndsBeforeItIsRegisteredLeavesNothingBehind() {
        var machine = Machine()
        let key = InFlightCalls.RequestKey(session: nil, id: .string("a"))
        machine.finished(key)
        machine.started(key, job: 1)
        guard case .notHere = machine.cancel(key) else { Issue.record("an ended job stayed registered"); return }
        machine.started(key, job: 2)
        guard case .cancel(2) = machine.cancel(key) else { Issue.record("the same id used again is not cancellable"); return }
    }
}
