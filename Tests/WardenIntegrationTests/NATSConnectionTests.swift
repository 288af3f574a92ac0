import Foundation
import Testing
import WardenNATS

/// Request/reply, queue groups, deadlines, cancellation and outages against a real nats-server.
@Suite struct NATSConnectionTests {
    func uniqueSubject(_ name: String) -> String { "test.\(name).\(UUID().uuidString.prefix(8))" }

    /// Whether a responder on `subject` answers (asked again until its subscription reached the server).
    func answers(_ caller: NATSConnection, _ subject: String) async -> Bool {
        await eventually(timeout: .seconds(5)) {
            (try? await caller.request(subject, payload: Data("ping".utf8), timeout: .milliseconds(200))) != nil
        }
    }

    @Test func requestReplyBetweenTwoConnections() async throws {
        let url = try TestEnvironment.natsURL
        let service = try await connectNATS(url, name: "responder")
        let caller = try await connectNATS(url, name: "caller")
        defer { service.close(); caller.close() }
        let subject = uniqueSubject("echo")
        let (subscription, task) = try echoResponder(service, subject: subject, prefix: "echo:")
        defer { subscription.unsubscribe(); task.cancel() }
        #expect(await answers(caller, subject), "the responder's subscription reached the server")
        let reply = try await caller.request(
            subject, payload: Data("hello".utf8), headers: ["Warden-Request-Id": "r-1", "traceparent": "00-abc-def-01"], timeout: .seconds(2))
        #expect(String(decoding: reply.payload, as: UTF8.self) == "echo:hello")
        #expect(reply.headers["Warden-Request-Id"] == "r-1")
        #expect(reply.headers["traceparent"] == "00-abc-def-01")
        // Many concurrent requests all get their own reply.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let reply = try await caller.request(subject, payload: Data("\(index)".utf8), headers: [:], timeout: .seconds(5))
                    #expect(String(decoding: reply.payload, as: UTF8.self) == "echo:\(index)")
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func deadlineExpires() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        defer { connection.close() }
        let subject = uniqueSubject("silent")
        // Subscribed on the same connection as the request: the server sees the one before the other.
        let silent = try connection.subscribe(subject, queue: nil)
        defer { silent.unsubscribe() }
        let start = ContinuousClock.now
        await #expect { try await connection.request(subject, payload: Data(), timeout: .milliseconds(200)) } throws: {
            ($0 as? NATSError)?.code == .timeout
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(2))
    }

    @Test func cancellationEndsTheWaitAtOnce() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        defer { connection.close() }
        let subject = uniqueSubject("slow")
        let silent = try connection.subscribe(subject, queue: nil)
        defer { silent.unsubscribe() }
        let request = Task { try await connection.request(subject, payload: Data(), timeout: .seconds(30)) }
        for await _ in silent { break }  // the request is out: the subscriber got it
        let start = ContinuousClock.now
        request.cancel()
        await #expect(throws: CancellationError.self) { try await request.value }
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func noRespondersFailsFast() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL) { $0.noRespondersRetryWindow = .zero }
        defer { connection.close() }
        let start = ContinuousClock.now
        await #expect { try await connection.request(uniqueSubject("nobody"), payload: Data(), timeout: .seconds(10)) } throws: {
            ($0 as? NATSError)?.code == .noResponders
        }
        // Long before the request's own 10 s deadline (a loaded test machine may take a few hundred ms).
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func noRespondersIsRetriedJustAfterConnecting() async throws {
        // A peer that subscribes a moment after we connect is still found (as after a NATS restart).
        let url = try TestEnvironment.natsURL
        let caller = try await connectNATS(url) { $0.noRespondersRetryWindow = .seconds(5) }
        let service = try await connectNATS(url)
        defer { caller.close(); service.close() }
        let subject = uniqueSubject("late")
        let late = Task {
            try await Task.sleep(for: .milliseconds(300))
            return try echoResponder(service, subject: subject)
        }
        let reply = try await caller.request(subject, payload: Data("x".utf8), timeout: .seconds(3))
        #expect(reply.payload == Data("x".utf8))
        let (subscription, task) = try await late.value
        subscription.unsubscribe()
        task.cancel()
    }

    @Test func queueGroupReplicasShareRequests() async throws {
        let url = try TestEnvironment.natsURL
        let replicaA = try await connectNATS(url, name: "replica-a")
        let replicaB = try await connectNATS(url, name: "replica-b")
        let caller = try await connectNATS(url, name: "caller")
        defer { replicaA.close(); replicaB.close(); caller.close() }
        let subject = uniqueSubject("shared")
        let (subscriptionA, taskA) = try echoResponder(replicaA, subject: subject, queue: "replicas", prefix: "a")
        let (subscriptionB, taskB) = try echoResponder(replicaB, subject: subject, queue: "replicas", prefix: "b")
        // Until both replicas have answered, their subscriptions may still be on their way.
        var answeredBy: [String: Int] = [:]
        var warmUp = 0
        while answeredBy.count < 2 && warmUp < 1_000 {
            warmUp += 1
            let reply = try await caller.request(subject, payload: Data(), timeout: .seconds(2))
            answeredBy[String(decoding: reply.payload, as: UTF8.self)] = 0
        }
        for _ in 0..<200 {
            let reply = try await caller.request(subject, payload: Data(), timeout: .seconds(2))
            answeredBy[String(decoding: reply.payload, as: UTF8.self), default: 0] += 1
        }
        subscriptionA.unsubscribe()
        subscriptionB.unsubscribe()
        let servedA = await taskA.value
        let servedB = await taskB.value
        #expect(servedA + servedB == 200 + warmUp, "each request is served exactly once")
        #expect((answeredBy["a"] ?? 0) > 20 && (answeredBy["b"] ?? 0) > 20, "both replicas take a share: \(answeredBy)")
    }

    @Test func subscriptionsAndConnectionsReleaseTheirContexts() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        let counter = connection.callbackContexts
        let baseline = counter.live
        var subscriptions: [NATSSubscription] = []
        for index in 0..<20 { subscriptions.append(try connection.subscribe("test.leak.\(index)", queue: index.isMultiple(of: 2) ? "q" : nil)) }
        #expect(counter.live == baseline + 20)
        for subscription in subscriptions { subscription.unsubscribe() }
        #expect(await eventually(timeout: .seconds(2)) { counter.live == baseline })
        // Every stream ends after unsubscribe.
        for subscription in subscriptions { for await _ in subscription {} }
        _ = try connection.subscribe("test.leak.left-open", queue: nil)
        connection.close()
        let released = await eventually(timeout: .seconds(2)) { counter.live == 0 }
        #expect(released, "all contexts released after close: \(counter.live) left")
    }

    @Test func closedConnectionFailsPendingAndNewCalls() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        let subject = uniqueSubject("never")
        let silent = try connection.subscribe(subject, queue: nil)
        let pending = Task { try await connection.request(subject, payload: Data(), timeout: .seconds(30)) }
        for await _ in silent { break }  // the request is out: the subscriber got it
        connection.close()
        await #expect { try await pending.value } throws: { ($0 as? NATSError)?.code == .connectionClosed }
        #expect(throws: NATSError.self) { try connection.publish("x", payload: Data()) }
        silent.unsubscribe()
    }

    @Test func invalidSubjectsAreRejected() async throws {
        let connection = try await connectNATS(try TestEnvironment.natsURL)
        defer { connection.close() }
        #expect { try connection.subscribe("bad subject", queue: nil) } throws: { ($0 as? NATSError)?.code == .invalidSubject }
        #expect { try connection.subscribe("a.>.b", queue: nil) } throws: { ($0 as? NATSError)?.code == .invalidSubject }
    }

    @Test func serverRestartIsSurvivedWithoutReconnectingByHand() async throws {
        let server = try await NATSServerProcess()
        do {
            try await survivesRestart(of: server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    func survivesRestart(of server: NATSServerProcess) async throws {
        let service = try await connectNATS(server.url, name: "service")
        let caller = try await connectNATS(server.url, name: "caller")
        defer { service.close(); caller.close() }
        let (subscription, task) = try echoResponder(service, subject: "restart.echo", queue: "svc")
        defer { subscription.unsubscribe(); task.cancel() }
        #expect(await answers(caller, "restart.echo"), "the responder's subscription reached the server")

        await server.stop()
        #expect(await eventually(timeout: .seconds(5)) { !caller.isConnected })
        // While NATS is down, calls fail fast instead of waiting for their deadline.
        let start = ContinuousClock.now
        await #expect { try await caller.request("restart.echo", payload: Data(), timeout: .seconds(10)) } throws: {
            ($0 as? NATSError)?.code == .notConnected
        }
        #expect(ContinuousClock.now - start < .milliseconds(500))

        try await server.start()
        #expect(await eventually(timeout: .seconds(10)) { caller.isConnected && service.isConnected })
        // The responder's subscription came back by itself.
        let ok = await eventually(timeout: .seconds(5)) {
            (try? await caller.request("restart.echo", payload: Data("2".utf8), timeout: .seconds(1)))?.payload == Data("2".utf8)
        }
        #expect(ok)
    }
}
