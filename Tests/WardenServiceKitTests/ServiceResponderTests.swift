import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import WardenContracts
import WardenNATS

@testable import WardenServiceKit

struct Greeting: Codable, Sendable, Equatable { var name: String }

@Suite struct ServiceResponderTests {
    let endpoint = ServiceEndpoint<Greeting, Greeting>(.policy, "greet")

    /// Serves `endpoint` on `bus` with `handler` until the body returns.
    func serving(
        _ bus: InMemoryMessageBus,
        _ handler: @escaping ServiceResponder<Greeting, Greeting>.Handler,
        _ body: () async throws -> Void
    ) async throws {
        let responder = ServiceResponder(endpoint, bus: bus, logger: Logger(label: "test"), handler: handler)
        let subscription = try bus.subscribe(endpoint.subject, queue: endpoint.service.queueGroup)
        let loop = Task { for await message in subscription { await responder.handle(message) } }
        defer { subscription.unsubscribe(); loop.cancel() }
        try await body()
    }

    @Test func typedCallRoundTrip() async throws {
        let bus = InMemoryMessageBus()
        try await serving(
            bus,
            { request, context in
                #expect(context.caller == "gateway/test")
                return Greeting(name: "hello \(request.name)")
            }
        ) {
            let client = ServiceClient(bus: bus, caller: "gateway/test")
            let reply = try await client.call(endpoint, Greeting(name: "ada"))
            #expect(reply == Greeting(name: "hello ada"))
        }
    }

    @Test func serviceErrorsPassThrough() async throws {
        let bus = InMemoryMessageBus()
        try await serving(bus, { _, _ in throw ServiceError(.forbidden, "not you") }) {
            let client = ServiceClient(bus: bus, caller: "t")
            await #expect(throws: ServiceError(.forbidden, "not you")) { try await client.call(endpoint, Greeting(name: "x")) }
        }
    }

    @Test func otherErrorsAreMaskedAsInternal() async throws {
        struct Secretive: Error { var password = "hunter2" }
        let bus = InMemoryMessageBus()
        try await serving(bus, { _, _ in throw Secretive() }) {
            let client = ServiceClient(bus: bus, caller: "t")
            await #expect {
                try await client.call(endpoint, Greeting(name: "x"))
            } throws: { error in
                guard let error = error as? ServiceError else { return false }
                return error.code == .internal && !error.message.contains("hunter2")
            }
        }
    }

    @Test func malformedAndUnknownVersionRequests() async throws {
        let bus = InMemoryMessageBus()
        try await serving(bus, { request, _ in request }) {
            for (payload, code) in [
                ("not json", ServiceError.Code.badRequest),
                (#"{"v":99,"body":{"name":"x"}}"#, .unsupportedVersion),
                (#"{"v":99,"body":{"wrong":"x"}}"#, .unsupportedVersion),
                (#"{"v":1,"body":{"wrong":"x"}}"#, .badRequest),
            ] {
                let reply = try await bus.request(endpoint.subject, payload: Data(payload.utf8), timeout: .seconds(1))
                let envelope = try EnvelopeCoding.decoder().decode(ReplyEnvelope<Greeting>.self, from: reply.payload)
                #expect(envelope.error?.code == code, "payload \(payload)")
            }
        }
    }

    /// A responder given an executor takes requests and runs its handler there, before and after a
    /// suspension (the vault's reads and policy's decisions run on their pool's event loop); replies
    /// carry no headers (the requester's inbox already says which request they answer).
    @Test func aResponderGivenAnExecutorHandlesRequestsOnIt() async throws {
        let bus = InMemoryMessageBus()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let responder = ServiceResponder(endpoint, bus: bus, logger: Logger(label: "test"), executor: EventLoopExecutor(loop)) { request, _ in
            let before = loop.inEventLoop
            try await Task.sleep(for: .milliseconds(1))
            return Greeting(name: "\(request.name) \(before) \(loop.inEventLoop)")
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await responder.run() }
            defer { group.cancelAll() }
            let payload = try EnvelopeCoding.encode(RequestEnvelope(Greeting(name: "ada")))
            var reply: NATSMessage?
            for _ in 0..<500 where reply == nil {  // until the responder has subscribed
                reply = try? await bus.request(endpoint.subject, payload: payload, timeout: .seconds(1))
                if reply == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let answer = try #require(reply)
            #expect(try EnvelopeCoding.decode(ReplyEnvelope<Greeting>.self, from: answer.payload).get() == Greeting(name: "ada true true"))
            #expect(answer.headers.isEmpty)
            // A large request is handled on Swift's pool, never holding the loop.
            let large = String(repeating: "a", count: 20_000)
            let largeReply = try await bus.request(
                endpoint.subject, payload: try EnvelopeCoding.encode(RequestEnvelope(Greeting(name: large))), timeout: .seconds(5))
            #expect(try EnvelopeCoding.decode(ReplyEnvelope<Greeting>.self, from: largeReply.payload).get() == Greeting(name: "\(large) false false"))
        }
    }

    /// A body read by hand (`HandWrittenJSON`) is refused as any other: a malformed envelope is a bad
    /// request, an unknown version is named.
    @Test func handReadBodiesAreRefusedAsOthersAre() async throws {
        let bus = InMemoryMessageBus()
        let reads = ServiceEndpoint<SecretReference, SecretReference>(.vault, "echo")
        let responder = ServiceResponder(reads, bus: bus, logger: Logger(label: "test")) { request, _ in request }
        let subscription = try bus.subscribe(reads.subject, queue: reads.service.queueGroup)
        let loop = Task { for await message in subscription { await responder.handle(message) } }
        defer { subscription.unsubscribe(); loop.cancel() }
        for (payload, code) in [
            (#"{"v":2,"body":{"org":"a","path":"p"}}"#, ServiceError.Code.unsupportedVersion),
            (#"{"body":{"org":"a","path":"p"}}"#, .badRequest),
            (#"{"v":1,"body":null}"#, .badRequest),
            (#"{"v":1,"body":{"org":"a","path":7}}"#, .badRequest),
            ("[]", .badRequest),
        ] {
            let reply = try await bus.request(reads.subject, payload: Data(payload.utf8), timeout: .seconds(1))
            let envelope = try EnvelopeCoding.decodeReply(SecretReference.self, from: reply.payload)
            #expect(envelope.error?.code == code, "payload \(payload)")
        }
        let reply = try await bus.request(
            reads.subject, payload: Data(#"{"v":1,"body":{"org":"a","path":"p","version":2}}"#.utf8), timeout: .seconds(1))
        #expect(try EnvelopeCoding.decodeReply(SecretReference.self, from: reply.payload).get() == SecretReference(org: "a", path: "p", version: 2))
    }

    @Test func transportFailuresBecomeServiceErrors() async {
        let bus = InMemoryMessageBus()
        let client = ServiceClient(bus: bus, caller: "t")
        await #expect(throws: ServiceError(.unavailable, "the policy service is not running")) {
            try await client.call(endpoint, Greeting(name: "x"))
        }
        bus.setConnected(false)
        await #expect(throws: ServiceError(.unavailable, "the message bus (NATS) is not reachable")) {
            try await client.call(endpoint, Greeting(name: "x"))
        }
    }
}
