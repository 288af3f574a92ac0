import Foundation
import Testing
import WardenNATS

/// JetStream publish-with-ack, durable consumers and key-value buckets on a real nats-server.
@Suite struct JetStreamTests {
    func names() -> (stream: String, subject: String) {
        let id = UUID().uuidString.prefix(8).lowercased()
        return ("TEST_\(id)", "test.js.\(id)")
    }

    @Test func publishWithAckAndDeduplication() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        defer { connection.close() }
        let (stream, subject) = names()
        try await connection.ensureStream(JetStreamStreamSpec(name: stream, subjects: ["\(subject).>"]))
        defer { Task { try? await connection.deleteStream(stream) } }
        // Ensuring again is a no-op (replicas start together).
        try await connection.ensureStream(JetStreamStreamSpec(name: stream, subjects: ["\(subject).>"]))
        let first = try await connection.jetStreamPublish("\(subject).a", payload: Data("1".utf8), messageID: "m-1")
        #expect(first.stream == stream && first.sequence == 1 && !first.duplicate)
        let again = try await connection.jetStreamPublish("\(subject).a", payload: Data("1".utf8), messageID: "m-1")
        #expect(again.duplicate && again.sequence == 1)
        let second = try await connection.jetStreamPublish("\(subject).b", payload: Data("2".utf8))
        #expect(second.sequence == 2)
        await #expect { try await connection.jetStreamPublish("nostream.\(subject)", payload: Data()) } throws: {
            ($0 as? NATSError)?.code == .jetStream
        }
    }

    @Test func durableConsumerSharesWorkAndRedeliversUnacked() async throws {
        let url = try TestEnvironment.natsURL
        let publisher = try await connectNATS(url)
        let workerA = try await connectNATS(url)
        let workerB = try await connectNATS(url)
        defer { publisher.close(); workerA.close(); workerB.close() }
        let (stream, subject) = names()
        try await publisher.ensureStream(JetStreamStreamSpec(name: stream, subjects: ["\(subject).>"]))
        defer { Task { try? await publisher.deleteStream(stream) } }
        var spec = JetStreamConsumerSpec(stream: stream, durableName: "workers", deliverGroup: "workers")
        spec.ackWait = .seconds(1)
        let subscriptionA = try await workerA.durableSubscription(spec)
        let subscriptionB = try await workerB.durableSubscription(spec)
        for index in 0..<20 {
            _ = try await publisher.jetStreamPublish("\(subject).event", payload: Data("\(index)".utf8))
        }
        // Worker A acknowledges; worker B takes its share without acknowledging, then leaves the group,
        // so everything B held must come back (after ackWait) and reach A.
        let received = SeenSet()
        let taskA = Task {
            for await message in subscriptionA {
                guard let jetStream = JetStreamMessage(message) else { continue }
                await received.insert(String(decoding: message.payload, as: UTF8.self), redelivered: jetStream.deliveryCount > 1)
                do { try workerA.ack(jetStream) } catch { Issue.record(error, "an acknowledgement failed") }
            }
        }
        let taskB = Task {
            for await message in subscriptionB {
                guard JetStreamMessage(message) != nil else { continue }
                await received.noteUnacked()
            }
        }
        // Every message has reached one of the two workers once before B leaves.
        #expect(await eventually(timeout: .seconds(10)) { await received.count + received.unacked >= 20 })
        subscriptionB.unsubscribe()
        let complete = await eventually(timeout: .seconds(20)) { await received.count == 20 }
        subscriptionA.unsubscribe()
        taskA.cancel()
        taskB.cancel()
        let count = await received.count
        let unacked = await received.unacked
        let redeliveries = await received.redeliveries
        #expect(complete, "every message is eventually acknowledged by A: \(count)")
        if unacked > 0 {
            #expect(redeliveries > 0, "messages B did not ack were redelivered")
        }
    }

    @Test func durableConsumerResumesAfterResubscribe() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        defer { connection.close() }
        let (stream, subject) = names()
        try await connection.ensureStream(JetStreamStreamSpec(name: stream, subjects: ["\(subject).>"]))
        defer { Task { try? await connection.deleteStream(stream) } }
        let spec = JetStreamConsumerSpec(stream: stream, durableName: "resume", deliverGroup: "resume")
        var subscription = try await connection.durableSubscription(spec)
        _ = try await connection.jetStreamPublish("\(subject).x", payload: Data("one".utf8))
        for await message in subscription {
            try connection.ack(JetStreamMessage(message)!)
            break
        }
        subscription.unsubscribe()
        // Published while nobody listens: delivered when the durable consumer is bound again.
        _ = try await connection.jetStreamPublish("\(subject).x", payload: Data("two".utf8))
        subscription = try await connection.durableSubscription(spec)
        var next: String?
        for await message in subscription {
            next = String(decoding: message.payload, as: UTF8.self)
            try connection.ack(JetStreamMessage(message)!)
            break
        }
        subscription.unsubscribe()
        #expect(next == "two")
    }

    @Test func readerReplaysFromASequenceThenFollowsLiveAndCleansUp() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        defer { connection.close() }
        let (stream, subject) = names()
        try await connection.ensureStream(JetStreamStreamSpec(name: stream, subjects: ["\(subject).>"]))
        defer { Task { try? await connection.deleteStream(stream) } }
        for text in ["1", "2", "3"] { _ = try await connection.jetStreamPublish("\(subject).mine", payload: Data(text.utf8)) }
        _ = try await connection.jetStreamPublish("\(subject).other", payload: Data("x".utf8))
        let reader = try await connection.read(stream: stream, subject: "\(subject).mine", startSequence: 2)
        var iterator = reader.makeAsyncIterator()
        let replayed = [await iterator.next(), await iterator.next()]
        #expect(replayed.map { $0.map { String(decoding: $0.message.payload, as: UTF8.self) } } == ["2", "3"])
        #expect(replayed.map { $0?.streamSequence } == [2, 3])
        _ = try await connection.jetStreamPublish("\(subject).mine", payload: Data("live".utf8))
        let live = await iterator.next()
        #expect(live.map { String(decoding: $0.message.payload, as: UTF8.self) } == "live" && live?.streamSequence == 5)
        await reader.close()
        let info = try await connection.request("$JS.API.CONSUMER.NAMES.\(stream)", payload: Data(), headers: [:], timeout: .seconds(5))
        #expect(!String(decoding: info.payload, as: UTF8.self).contains(reader.consumer), "closing deletes the consumer")
    }

    @Test func keyValueBucket() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        defer { connection.close() }
        let name = "test_\(UUID().uuidString.prefix(8).lowercased())"
        let bucket = try await connection.keyValueBucket(KeyValueBucketSpec(name: name, history: 2))
        defer { Task { try? await connection.deleteStream("KV_\(name)") } }
        #expect(try await bucket.get("missing") == nil)
        let first = try await bucket.put("session.1", Data("a".utf8))
        let entry = try await bucket.get("session.1")
        #expect(entry?.value == Data("a".utf8) && entry?.revision == first)
        await #expect { try await bucket.create("session.1", Data("b".utf8)) } throws: { ($0 as? NATSError)?.code == .keyConflict }
        let second = try await bucket.update("session.1", Data("c".utf8), expectedRevision: first)
        await #expect { try await bucket.update("session.1", Data("d".utf8), expectedRevision: first) } throws: {
            ($0 as? NATSError)?.code == .keyConflict
        }
        #expect(try await bucket.get("session.1")?.revision == second)
        try await bucket.delete("session.1")
        #expect(try await bucket.get("session.1") == nil)
        // A second handle (another replica) sees the same bucket.
        let other = try await connectNATS(try TestEnvironment.natsURL)
        defer { other.close() }
        let shared = try await other.keyValueBucket(KeyValueBucketSpec(name: name, history: 2))
        try await bucket.put("k", Data("v".utf8))
        #expect(try await shared.get("k")?.value == Data("v".utf8))
    }
}

actor SeenSet {
    private var values: Set<String> = []
    private(set) var redeliveries = 0
    private(set) var unacked = 0
    var count: Int { values.count }

    func insert(_ value: String, redelivered: Bool) {
        values.insert(value)
        if redelivered { redeliveries += 1 }
    }

    func noteUnacked() { unacked += 1 }
}
