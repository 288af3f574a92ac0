import Testing
import WardenMCP

@testable import WardenGateway

/// A supervisor's decisions without processes or sleeps: starting, ready, restarting with backoff,
/// stopped.
@Suite struct SupervisorStateMachineTests {
    let catalogue = ServerCatalogue(protocolVersion: "2025-06-18", serverInfo: .object([]), capabilities: .object([]), tools: [.string("t")])

    @Test func aCrashedServerIsRestartedWithGrowingBackoffThatResetsAfterAStableRun() {
        var machine = SupervisorStateMachine(serverID: "s")
        #expect(machine.start() == .connect)
        #expect(machine.status.state == .starting)
        machine.handshakeSucceeded(catalogue)
        #expect(machine.status.state == .ready && machine.status.catalogue == catalogue)
        // It crashes at once, again and again: 0.5 s, 1 s, 2 s ... up to a minute.
        var delays: [Duration] = []
        for _ in 0..<9 {
            guard case .restart(let delay) = machine.runEnded("the process exited (exited(1))", uptime: .seconds(1)) else { break }
            #expect(machine.status.state == .failed && machine.status.detail == "the process exited (exited(1))" && machine.status.catalogue == nil)
            delays.append(delay)
            #expect(machine.restartDue() == .connect)
            #expect(machine.status.state == .starting)
        }
        #expect(
            delays == [
                .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32), .seconds(60), .seconds(60),
            ])
        #expect(machine.status.restarts == 9)
        // After a run that stayed up, the backoff starts again from the beginning.
        machine.handshakeSucceeded(catalogue)
        #expect(machine.runEnded("the process exited (killed)", uptime: .seconds(300)) == .restart(after: .milliseconds(500)))
    }

    @Test func aStoppedSupervisorFinishesInsteadOfRestarting() {
        var machine = SupervisorStateMachine(serverID: "s")
        _ = machine.start()
        machine.handshakeSucceeded(catalogue)
        machine.stop()
        #expect(machine.runEnded("stopped", uptime: .seconds(5)) == .finish)
        #expect(machine.status.state == .stopped && machine.status.detail == nil && machine.status.restarts == 0)
    }

    @Test func aStopDuringTheBackoffEndsIt() {
        var machine = SupervisorStateMachine(serverID: "s")
        _ = machine.start()
        #expect(machine.runEnded("cannot start", uptime: .zero) == .restart(after: .milliseconds(500)))
        machine.stop()
        #expect(machine.restartDue() == .finish)
        #expect(machine.status.state == .stopped)
    }

    @Test func listChangesReachTheCatalogue() {
        var machine = SupervisorStateMachine(serverID: "s")
        _ = machine.start()
        machine.handshakeSucceeded(catalogue)
        machine.listChanged("tools", [.string("a"), .string("b")])
        #expect(machine.status.catalogue?.tools == [.string("a"), .string("b")])
    }
}
