import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import WardenGateway
import WardenMCP

/// `tools/call` through the gateway versus directly to the same stdio server, in one run.
struct ProxyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mcp", abstract: "tools/call through the gateway vs directly to the server.")

    @Option(help: "The gateway's /mcp URL (its servers file runs `warden-bench mcp-server` as server 'bench').") var url: String
    @Option var requests = 5_000
    @Option var concurrency = 8
    @Option var seconds = 5

    func run() async throws {
        let call: JSONValue = .object([("name", "echo"), ("arguments", .object([("text", "hello")]))])

        // Direct: the gateway's own stdio client to a private instance of the same server.
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let direct = StdioServerConnection(serverID: "bench", spec: StdioLaunchSpec(command: executable, arguments: ["mcp-server"]), logger: Logger(label: "bench"))
        let running = Task { try await direct.run() }
        _ = try await direct.request("initialize", params: .object([("protocolVersion", "2025-06-18"), ("capabilities", .object([])), ("clientInfo", .object([("name", "b"), ("version", "1")]))]), timeout: .seconds(10))
        let directLatency = try await sequential { _ = try await direct.request("tools/call", params: call, timeout: .seconds(10)) }
        let directRate = try await throughput { _ = try await direct.request("tools/call", params: call, timeout: .seconds(10)) }
        await direct.stop()
        _ = try? await running.value

        // Through the gateway: Streamable HTTP, one session.
        let session = try await initialize()
        let body = JSONRPCMessage.request(id: .number("1"), method: "tools/call", params: call.setting("name", to: "bench__echo")).json.serialized()
        let viaGateway: @Sendable () async throws -> Void = {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json, text/event-stream")
            request.headers.add(name: "Mcp-Session-Id", value: session)
            request.headers.add(name: "MCP-Protocol-Version", value: "2025-06-18")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            guard response.status == .ok, text.contains("hello") else { throw ValidationError("unexpected answer: \(response.status) \(text)") }
        }
        // Wait until the gateway's server is ready.
        for _ in 0..<100 { if (try? await viaGateway()) != nil { break }; try await Task.sleep(for: .milliseconds(100)) }
        let gatewayLatency = try await sequential(viaGateway)
        let gatewayRate = try await throughput(viaGateway)

        func ms(_ d: Duration) -> String { String(format: "%.3f ms", Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15) }
        print("direct  (stdio): p50 \(ms(directLatency.p50)), p99 \(ms(directLatency.p99)), \(Int(directRate)) calls/s at \(concurrency) in flight")
        print("gateway (HTTP):  p50 \(ms(gatewayLatency.p50)), p99 \(ms(gatewayLatency.p99)), \(Int(gatewayRate)) calls/s at \(concurrency) in flight")
        print("added latency: p50 \(ms(gatewayLatency.p50 - directLatency.p50)), p99 \(ms(gatewayLatency.p99 - directLatency.p99)); gateway throughput \(String(format: "%.0f%%", gatewayRate / directRate * 100)) of direct")
    }

    func initialize() async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        guard let session = response.headers.first(name: "Mcp-Session-Id") else { throw ValidationError("no session from \(url)") }
        return session
    }

    func sequential(_ operation: @Sendable () async throws -> Void) async throws -> (p50: Duration, p99: Duration) {
        for _ in 0..<200 { try await operation() }
        var samples: [Duration] = []
        let clock = ContinuousClock()
        for _ in 0..<requests {
            let start = clock.now
            try await operation()
            samples.append(clock.now - start)
        }
        samples.sort()
        return (samples[samples.count / 2], samples[samples.count * 99 / 100])
    }

    func throughput(_ operation: @escaping @Sendable () async throws -> Void) async throws -> Double {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(seconds)
        let done = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var count = 0
                    while clock.now < deadline {
                        try await operation()
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(done) / Double(seconds)
    }
}
