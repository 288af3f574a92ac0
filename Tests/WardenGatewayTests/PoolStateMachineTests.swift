import Testing

@testable import WardenGateway

/// The pool's decisions, without processes, clocks or sleeps: events in, actions out.
@Suite struct PoolStateMachineTests {
    typealias Machine = PoolStateMachine<ContinuousClock.Instant>
    let t0 = ContinuousClock.now

    func at(_ seconds: Int) -> ContinuousClock.Instant { t0.advanced(by: .seconds(seconds)) }

    @Test func aLazyServerStartsOnTheFirstCallWhichWaitsUntilItIsReady() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: false))
        #expect(machine.boot(now: at(0)).isEmpty, "nothing runs before it is needed")
        #expect(machine.call(1, now: at(1)) == [.startInstance(1)])
        #expect(machine.call(2, now: at(1)).isEmpty, "a second caller waits for the instance that is starting")
        #expect(machine.instanceReady(1, now: at(2)) == [.resume(waiter: 1, instance: 1), .resume(waiter: 2, instance: 1)])
        #expect(machine.instances[1]?.inFlight == 2)
    }

    @Test func aBootServerStartsAtOnceAndKeepsOneInstance() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: true, idleTimeout: .seconds(60)))
        #expect(machine.boot(now: at(0)) == [.startInstance(1)])
        _ = machine.instanceReady(1, now: at(0))
        #expect(machine.reapIdle(now: at(3_600)).isEmpty, "the minimum instance stays however idle")
    }

    @Test func idleInstancesStopAfterTheirTimeoutButNotWhileBusy() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: false, idleTimeout: .seconds(300)))
        _ = machine.call(1, now: at(0))
        _ = machine.instanceReady(1, now: at(1))
        #expect(machine.reapIdle(now: at(1_000)).isEmpty, "a call in flight keeps it")
        machine.callFinished(on: 1, now: at(1_000))
        #expect(machine.reapIdle(now: at(1_299)).isEmpty, "not idle long enough")
        #expect(machine.reapIdle(now: at(1_300)) == [.stopInstances([1])])
        #expect(machine.isEmpty)
        #expect(machine.call(2, now: at(1_400)) == [.startInstance(2)], "the next call starts it again")
    }

    @Test func anInstanceThatTakesLongerToStartThanTheIdleTimeoutIsNotStopped() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: false, idleTimeout: .seconds(1)))
        #expect(machine.call(1, now: at(0)) == [.startInstance(1)])
        #expect(machine.reapIdle(now: at(5)).isEmpty, "still starting, with a caller waiting")
        #expect(machine.instanceReady(1, now: at(6)) == [.resume(waiter: 1, instance: 1)])
    }

    @Test func aSecondInstanceStartsWhileAllAreBusyAndServesTheNextCaller() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: true, maximumInstances: 2))
        _ = machine.boot(now: at(0))
        _ = machine.instanceReady(1, now: at(0))
        #expect(machine.call(1, now: at(1)) == [.resume(waiter: 1, instance: 1)])
        // Busy: this call is served by the busy instance now, and capacity is added for later ones.
        #expect(machine.call(2, now: at(2)) == [.startInstance(2), .resume(waiter: 2, instance: 1)])
        #expect(machine.instanceReady(2, now: at(3)).isEmpty)
        #expect(machine.call(3, now: at(4)) == [.resume(waiter: 3, instance: 2)], "the least busy instance serves the next caller")
    }

    @Test func theMaximumIsRespected() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: true, maximumInstances: 2))
        _ = machine.boot(now: at(0))
        _ = machine.instanceReady(1, now: at(0))
        var started = 1
        for waiter in 1...20 {
            for case .startInstance(let number) in machine.call(waiter, now: at(waiter)) {
                started += 1
                _ = machine.instanceReady(number, now: at(waiter))
            }
        }
        #expect(started == 2 && machine.instances.count == 2)
        #expect(machine.instances.values.map(\.inFlight).sorted() == [10, 10], "calls are spread over the least busy")
    }

    @Test func aCallerWaitingForAnInstanceIsServedByTheNextThatBecomesReady() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: false, maximumInstances: 2))
        _ = machine.call(1, now: at(0))
        _ = machine.call(2, now: at(0))
        // The first start fails while nothing else is starting: both callers fail with its reason.
        #expect(
            machine.instanceFailed(1, detail: "the process exited (exited(1))") == [
                .fail(waiter: 1, .didNotStart("the process exited (exited(1))")), .fail(waiter: 2, .didNotStart("the process exited (exited(1))")),
            ])
        // Its supervisor restarts it with backoff; a call meanwhile starts the second instance allowed.
        #expect(machine.call(3, now: at(1)) == [.startInstance(2)])
        machine.instanceStarting(1)
        #expect(machine.instanceReady(1, now: at(2)) == [.resume(waiter: 3, instance: 1)])
    }

    @Test func whenEveryInstanceAllowedIsFailingACallFailsAtOnceWithTheReason() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: true))
        _ = machine.boot(now: at(0))
        _ = machine.instanceReady(1, now: at(0))
        _ = machine.instanceFailed(1, detail: "the process exited (killed)")
        #expect(machine.call(1, now: at(1)) == [.fail(waiter: 1, .notReady("the process exited (killed)"))])
        machine.instanceStarting(1)
        #expect(machine.call(2, now: at(2)).isEmpty, "restarted: the caller waits for it")
        #expect(machine.instanceReady(1, now: at(3)) == [.resume(waiter: 2, instance: 1)])
    }

    @Test func aWaiterThatGivesUpIsFailedOnceAndForgotten() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: false))
        _ = machine.call(1, now: at(0))
        #expect(machine.waiterTimedOut(1) == [.fail(waiter: 1, .timedOut)])
        #expect(machine.waiterTimedOut(1).isEmpty)
        #expect(machine.instanceReady(1, now: at(1)).isEmpty, "nobody is resumed twice")
        #expect(machine.instances[1]?.inFlight == 0)
    }

    @Test func aListingWaitsForAFirstInstanceWithoutTakingACallSlot() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: false))
        #expect(machine.warmUp(1, now: at(0)) == [.startInstance(1)])
        #expect(machine.instanceReady(1, now: at(1)) == [.resume(waiter: 1, instance: 1)])
        #expect(machine.instances[1]?.inFlight == 0)
    }

    @Test func shutdownFailsWaitersAndStopsEveryInstance() {
        var machine = Machine(policy: PoolPolicy(startAtBoot: true, maximumInstances: 2))
        _ = machine.boot(now: at(0))
        _ = machine.call(1, now: at(0))
        #expect(machine.shutdown() == [.fail(waiter: 1, .stopping), .stopInstances([1])])
        #expect(machine.call(2, now: at(1)) == [.fail(waiter: 2, .stopping)])
    }
}
