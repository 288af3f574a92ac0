import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenGateway

/// What one downstream request costs the client side: the gateway's async-http-client (configured
/// as `DownstreamHTTP` configures it, used as `StreamableHTTPConnection` uses it: `execute` with a
/// timeout, the body collected) against a bare NIO HTTP/1.1 client (one keep-alive connection, the
/// request's parts written on its loop, the answer collected by a handler that completes one
/// promise), both posting the same `tools/call` to the same server, one request at a time. It
/// measures how much a leaner downstream client could save; the bare client is a measuring stick
/// only (plain HTTP, no pool, no TLS, no timeouts), not a client Warden uses.
///
/// Without `--only`: alternating rounds (each client first in half of them), this process's CPU
/// time (user and system, `getrusage`) and wall time per request. With `--only ahc|nio`: that client
/// alone, for counting instructions (callgrind, by difference between two request counts).
struct DownstreamClientBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "downstream-client", abstract: "One downstream request: the gateway's async-http-client against a bare NIO client.")

    @Option(help: "A Streamable HTTP MCP server's URL (plain http, host:port/path) with an `echo` tool.") var url: String
    @Option var requests = 2_000
    @Option var rounds = 8
    @Option(help: "ahc or nio: only that client, for instruction counts.") var only: String?

    static let body = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hotpath-echo-0123456789"}}}"#

    func run() async throws {
        guard let target = URL(string: url), target.scheme == "http", let host = target.host, let port = target.port else {
            throw ValidationError("--url must be plain http with a host and a port")
        }
        let client = DownstreamHTTP.make(readTimeout: .seconds(30))
        let bare = try await BareClient.connect(host: host, port: port, path: target.path.isEmpty ? "/" : target.path)
        let clients: [(name: String, post: () async throws -> Void)] = [
            ("async-http-client", { try await Self.post(client, url: url) }),
            ("bare NIO client", { try await bare.post(Self.body) }),
        ]
        do {
            try await measure(clients)
        } catch {
            try? await client.shutdown()
            bare.close()
            throw error
        }
        try await client.shutdown()
        bare.close()
    }

    func measure(_ clients: [(name: String, post: () async throws -> Void)]) async throws {
        if let only {
            guard let chosen = ["ahc": 0, "nio": 1][only] else { throw ValidationError("--only is ahc or nio") }
            for _ in 0..<requests { try await clients[chosen].post() }
            print("done: \(requests) requests through the \(clients[chosen].name)")
            return
        }
        for entry in clients { for _ in 0..<100 { try await entry.post() } }  // connections, caches
        var cpu: [[Double]] = [[], []]
        var wall: [[Double]] = [[], []]
        let clock = ContinuousClock()
        for round in 0..<max(2, rounds) {
            for index in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let (cpuBefore, started) = (Self.cpuSeconds(), clock.now)
                for _ in 0..<requests { try await clients[index].post() }
                wall[index].append((clock.now - started).seconds / Double(requests) * 1e6)
                cpu[index].append((Self.cpuSeconds() - cpuBefore) / Double(requests) * 1e6)
            }
            print(
                String(
                    format: "round %d: async-http-client %.1f µs CPU, %.1f µs wall a request; bare NIO client %.1f µs CPU, %.1f µs wall",
                    round + 1, cpu[0].last!, wall[0].last!, cpu[1].last!, wall[1].last!))
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        print(
            String(
                format:
                    "one request, medians of %d rounds of %d: async-http-client %.1f µs CPU (%.1f µs wall), bare NIO client %.1f µs CPU (%.1f µs wall): the bare client uses %.0f%% of the CPU",
                cpu[0].count, requests, median(cpu[0]), median(wall[0]), median(cpu[1]), median(wall[1]), median(cpu[1]) / median(cpu[0]) * 100))
    }

    static func post(_ client: HTTPClient, url: String) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json, text/event-stream")
        request.headers.add(name: "MCP-Protocol-Version", value: "2025-11-25")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok, answer.readableBytes > 0 else { throw ValidationError("the server answered HTTP \(response.status.code)") }
    }

    /// This process's CPU time so far (user and system), in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// One keep-alive HTTP/1.1 connection; one request at a time.
private final class BareClient: Sendable {
    let channel: any Channel
    let collector: Collector
    let host: String
    let path: String

    private init(channel: any Channel, collector: Collector, host: String, path: String) {
        (self.channel, self.collector, self.host, self.path) = (channel, collector, host, path)
    }

    static func connect(host: String, port: Int, path: String) async throws -> BareClient {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: host, port: port).get()
        return BareClient(channel: channel, collector: collector, host: "\(host):\(port)", path: path)
    }

    func post(_ body: String) async throws {
        let promise = channel.eventLoop.makePromise(of: HTTPResponseStatus.self)
        let bytes = ByteBuffer(string: body)
        let (channel, collector, host, path) = (channel, collector, host, path)
        channel.eventLoop.execute {
            collector.start(promise)
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
            head.headers.add(name: "Host", value: host)
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Accept", value: "application/json, text/event-stream")
            head.headers.add(name: "MCP-Protocol-Version", value: "2025-11-25")
            head.headers.add(name: "Content-Length", value: String(bytes.readableBytes))
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(bytes)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        let status = try await promise.futureResult.get()
        guard status == .ok else { throw ValidationError("the server answered HTTP \(status.code)") }
    }

    func close() { channel.close(promise: nil) }

    /// Collects one answer on the connection's loop (only ever touched there).
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        private var promise: EventLoopPromise<HTTPResponseStatus>?
        private var status = HTTPResponseStatus.ok
        private var body = ByteBuffer()

        func start(_ promise: EventLoopPromise<HTTPResponseStatus>) {
            self.promise = promise
            body.clear()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): status = head.status
            case .body(var part): body.writeBuffer(&part)
            case .end:
                promise?.succeed(body.readableBytes > 0 ? status : .noContent)
                promise = nil
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise?.fail(error)
            promise = nil
            context.close(promise: nil)
        }
    }
}
