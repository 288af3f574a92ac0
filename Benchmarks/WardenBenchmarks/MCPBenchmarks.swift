import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import WardenGateway
import WardenMCP

/// `tools/call` through the gateway versus directly to the same server, in one run, for a stdio
/// server and (with `--http-server`) a Streamable HTTP server.
struct ProxyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mcp", abstract: "tools/call through the gateway vs directly to the server.")

    @Option(help: "The gateway's /mcp URL (it fronts `warden-bench mcp-server` as 'bench', and the --http-server as 'benchhttp').") var url: String
    @Option(help: "URL of a `warden-bench mcp-server --transport streamable-http` the gateway also fronts.") var httpServer: String?
    @Flag(help: "The gateway also fronts 'benchcred' and 'benchhttpcred', the same servers with a credential injected from the vault.")
    var credentials = false
    @Option(
        help:
            "The /mcp URL of a second gateway fronting the same servers with authentication and policy on (an allow-all policy, tools trusted on first use): measured side by side."
    )
    var policyURL: String?
    @Option(
        help:
            "The /mcp URL of a third gateway like the first but without call records (WARDEN_BENCHMARK_UNAUDITED=true): auditing's cost, side by side."
    )
    var unauditedURL: String?
    @Option var requests = 5_000
    @Option var concurrency = 8
    @Option var seconds = 5

    static let call: JSONValue = .object([("name", "echo"), ("arguments", .object([("text", "hello")]))])

    func run() async throws {
        // The reference without any HTTP: the gateway's own stdio client to a private instance of
        // the server in this process (what an MCP client that launches the server itself does).
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let direct = StdioServerConnection(
            serverID: "bench", spec: StdioLaunchSpec(command: executable, arguments: ["mcp-server"]), logger: Logger(label: "bench"))
        let running = Task { try await direct.run() }
        _ = try await direct.request(
            "initialize",
            params: .object([
                ("protocolVersion", "2025-06-18"), ("capabilities", .object([])), ("clientInfo", .object([("name", "b"), ("version", "1")])),
            ]), timeout: .seconds(10))
        let directPipe = try await measure { _ = try await direct.request("tools/call", params: Self.call, timeout: .seconds(10)) }
        await direct.stop()
        _ = try? await running.value
        let gatewayStdio = try await measure(try await poster(url, tool: "bench__echo"))
        report("stdio server: through the gateway vs an in-process pipe to it (no HTTP at all)", direct: directPipe, gateway: gatewayStdio)

        // The load run: one HTTP load generator, posting tools/call directly to the server's
        // Streamable HTTP endpoint, or to the gateway fronting the same server over HTTP and over stdio.
        if let httpServer {
            let directHTTP = try await measure(try await poster(httpServer, tool: "echo"))
            let gatewayHTTP = try await measure(try await poster(url, tool: "benchhttp__echo"))
            report("Streamable HTTP server: through the gateway vs directly", direct: directHTTP, gateway: gatewayHTTP)
            report("stdio server through the gateway vs the same server directly over HTTP", direct: directHTTP, gateway: gatewayStdio)
            if credentials {
                // Side by side in this run: the same servers with a credential injected and every
                // answer scanned by the leak guard.
                let injectedHTTP = try await measure(try await poster(url, tool: "benchhttpcred__echo"))
                report(
                    "Streamable HTTP server: with credential injection and the leak guard vs without", direct: gatewayHTTP, gateway: injectedHTTP,
                    labels: ("without", "with"))
                let injectedStdio = try await measure(try await poster(url, tool: "benchcred__echo"))
                report(
                    "stdio server: with credential injection and the leak guard vs without", direct: gatewayStdio, gateway: injectedStdio,
                    labels: ("without", "with"))
            }
            if let unauditedURL {
                // Side by side in this run: every request on the record (spooled, batched to
                // JetStream, stored by the audit service) against the same gateway recording nothing.
                let unauditedHTTP = try await measure(try await poster(unauditedURL, tool: "benchhttp__echo"))
                report(
                    "Streamable HTTP server: with call auditing vs without", direct: unauditedHTTP, gateway: gatewayHTTP,
                    labels: ("without", "with"))
                let unauditedStdio = try await measure(try await poster(unauditedURL, tool: "bench__echo"))
                report("stdio server: with call auditing vs without", direct: unauditedStdio, gateway: gatewayStdio, labels: ("without", "with"))
            }
            // The agent token for --policy-url comes from the environment, never the command line.
            if let policyURL, let token = ProcessInfo.processInfo.environment["WARDEN_BENCH_AGENT_TOKEN"] {
                // Side by side in this run: a gateway deciding every call (agent token checked, the
                // decision and the tool's pin from its warm caches) against the one that decides nothing.
                let decidedHTTP = try await measure(try await poster(policyURL, tool: "benchhttp__echo", token: token))
                report(
                    "Streamable HTTP server: with authentication, policy (warm cache) and tool pinning vs without", direct: gatewayHTTP,
                    gateway: decidedHTTP, labels: ("without", "with"))
                let decidedStdio = try await measure(try await poster(policyURL, tool: "bench__echo", token: token))
                report(
                    "stdio server: with authentication, policy (warm cache) and tool pinning vs without", direct: gatewayStdio, gateway: decidedStdio,
                    labels: ("without", "with"))
            }
        }
    }

    struct Measurement {
        var p50: Duration
        var p99: Duration
        var rate: Double
    }

    func measure(_ operation: @escaping @Sendable () async throws -> Void) async throws -> Measurement {
        let latency = try await sequential(operation)
        return Measurement(p50: latency.p50, p99: latency.p99, rate: try await throughput(operation))
    }

    func report(_ name: String, direct: Measurement, gateway: Measurement, labels: (String, String) = ("direct", "gateway")) {
        func ms(_ d: Duration) -> String { String(format: "%.3f ms", Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15) }
        print("### \(name)")
        print("\(labels.0): p50 \(ms(direct.p50)), p99 \(ms(direct.p99)), \(Int(direct.rate)) calls/s at \(concurrency) in flight")
        print("\(labels.1): p50 \(ms(gateway.p50)), p99 \(ms(gateway.p99)), \(Int(gateway.rate)) calls/s at \(concurrency) in flight")
        print(
            "added latency: p50 \(ms(gateway.p50 - direct.p50)), p99 \(ms(gateway.p99 - direct.p99)); \(labels.1) throughput \(String(format: "%.0f%%", gateway.rate / direct.rate * 100)) of \(labels.0)"
        )
        print("")
    }

    /// A Streamable HTTP `tools/call` to `endpoint` in one session, ready to repeat; waits until it works.
    func poster(_ endpoint: String, tool: String, token: String? = nil) async throws -> @Sendable () async throws -> Void {
        let session = try await initialize(endpoint, token: token)
        let body = JSONRPCMessage.request(id: .number("1"), method: "tools/call", params: Self.call.setting("name", to: .string(tool))).json
            .serialized()
        let operation: @Sendable () async throws -> Void = {
            var request = HTTPClientRequest(url: endpoint)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json, text/event-stream")
            request.headers.add(name: "Mcp-Session-Id", value: session)
            request.headers.add(name: "MCP-Protocol-Version", value: "2025-06-18")
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            guard response.status == .ok, text.contains("hello") else { throw ValidationError("unexpected answer: \(response.status) \(text)") }
        }
        for _ in 0..<100 {
            if (try? await operation()) != nil { return operation }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("\(tool) at \(endpoint) never answered")
    }

    func initialize(_ endpoint: String, token: String? = nil) async throws -> String {
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        request.body = .bytes(
            ByteBuffer(
                string:
                    #"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#
            ))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        guard let session = response.headers.first(name: "Mcp-Session-Id") else { throw ValidationError("no session from \(endpoint)") }
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
