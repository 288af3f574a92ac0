import Foundation
import Testing
import WardenNATS

@Suite struct InMemoryMessageBusTests {
    @Test func requestReply() async throws {
        let bus = InMemoryMessageBus()
        let subscription = try bus.subscribe("svc.echo", queue: "svc")
        let responder = Task {
            for await message in subscription {
                try? bus.respond(to: message, payload: message.payload + Data("!".utf8), headers: ["x": message.headers["x"] ?? ""])
            }
        }
        defer { responder.cancel(); subscription.unsubscribe() }
        let reply = try await bus.request("svc.echo", payload: Data("hi".utf8), headers: ["x": "1"], timeout: .seconds(1))
        #expect(String(decoding: reply.payload, as: UTF8.self) == "hi!")
        #expect(reply.headers["x"] == "1")
    }

    @Test func noRespondersFailsAtOnce() async {
        let bus = InMemoryMessageBus()
        await #expect(throws: NATSError(.noResponders, "no service is listening on nobody.home")) {
            try await bus.request("nobody.home", payload: Data(), timeout: .seconds(5))
        }
    }

    @Test func silentResponderTimesOut() async throws {
        let bus = InMemoryMessageBus()
        let subscription = try bus.subscribe("svc.silent", queue: nil)
        defer { subscription.unsubscribe() }
        let start = ContinuousClock.now
        await #expect {
            try await bus.request("svc.silent", payload: Data(), timeout: .milliseconds(100))
        } throws: { ($0 as? NATSError)?.code == .timeout }
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func queueGroupSharesMessagesAndPlainSubscribersGetAll() async throws {
        let bus = InMemoryMessageBus()
        let first = try bus.subscribe("work", queue: "workers")
        let second = try bus.subscribe("work", queue: "workers")
        let watcher = try bus.subscribe("work", queue: nil)
        for index in 0..<10 { try bus.publish("work", payload: Data([UInt8(index)])) }
        first.unsubscribe()
        second.unsubscribe()
        watcher.unsubscribe()
        var counts = [0, 0, 0]
        for await _ in first { counts[0] += 1 }
        for await _ in second { counts[1] += 1 }
        for await _ in watcher { counts[2] += 1 }
        #expect(counts == [5, 5, 10])
    }

    @Test func disconnectedFailsFast() {
        let bus = InMemoryMessageBus()
        bus.setConnected(false)
        #expect(throws: NATSError(.notConnected, "in-memory bus disconnected")) {
            try bus.publish("a", payload: Data())
        }
    }
}
