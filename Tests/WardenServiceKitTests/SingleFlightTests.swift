import Foundation
import Synchronization
import Testing

@testable import WardenServiceKit

@Suite struct SingleFlightTests {
    struct Failure: Error {}

    final class Counter: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    @Test func concurrentCallersOfOneKeyShareOneRun() async throws {
        let flight = SingleFlight<String, Int>()
        let runs = Counter()
        let started = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let results = await withTaskGroup(of: Int?.self) { group in
            group.addTask {
                try? await flight.run("grant") {
                    runs.add()
                    started.continuation.yield()
                    for await _ in release.stream { break }
                    return 42
                }
            }
            // The leader is inside its work: everyone after it joins.
            for await _ in started.stream { break }
            for _ in 0..<20 {
                group.addTask {
                    try? await flight.run("grant") {
                        runs.add(); return 0
                    }
                }
            }
            // Followers register under the lock before they wait; give them the chance to arrive.
            while !flight.hasFollowers("grant", count: 20) { await Task.yield() }
            release.continuation.yield()
            var all: [Int?] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 21 && results.allSatisfy { $0 == 42 }, "\(results)")
        #expect(runs.count == 1)
        // Done: the next call runs again.
        #expect(try await flight.run("grant") { 7 } == 7)
    }

    @Test func anErrorReachesEveryWaiterAndOtherKeysRunApart() async {
        let flight = SingleFlight<String, Int>()
        await #expect(throws: Failure.self) { try await flight.run("a") { throw Failure() } }
        let (a, b) = await (try? flight.run("a") { 1 }, try? flight.run("b") { 2 })
        #expect(a == 1 && b == 2)
    }

    @Test func replacedValuesOfALabelLeaveTheLogRedaction() {
        let label = "oauth://test-\(UUID().uuidString)"
        let tokens = (0..<5).map { "token-\($0)-\(UUID().uuidString)" }
        for token in tokens { LogRedaction.add([(label: label, value: token)], keepingPerLabel: 2) }
        let redactor = LogRedaction.redactor
        #expect(redactor.redact(tokens[4]) != nil && redactor.redact(tokens[3]) != nil, "the newest are redacted")
        #expect(redactor.redact(tokens[0]) == nil && redactor.redact(tokens[2]) == nil, "older ones are dropped")
    }
}
