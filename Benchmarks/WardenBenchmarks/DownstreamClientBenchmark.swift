import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenGateway

/// What one downstream request costs the client side: the gateway's Streamable HTTP client
/// (`DownstreamHTTPClient`, as `StreamableHTTPConnection` uses it) against async-http-client
/// configured and used as the gateway used it before (`DownstreamHTTP`: `execute` with a timeout,
/// the body collected), both posting the same `tools/call` to the same server, one request at a
/// time.
///
/// Without `--only`: alternating rounds (each client first in half of them), this process's CPU
/// time (user and system, `getrusage`) and wall time per request. With `--only ahc|warden`: that
/// client alone, for counting instructions (callgrind, by difference between two request counts).
struct DownstreamClientBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "downstream-client", abstract: "One downstream request: the gateway's HTTP client against async-http-client.")

    @Option(help: "A Streamable HTTP MCP server's URL with an `echo` tool.") var url: String
    @Option var requests = 2_000
    @Option var rounds = 8
    @Option(help: "ahc or warden: only that client, for instruction counts.") var only: String?

    static let body = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hotpath-echo-0123456789"}}}"#

    func run() async throws {
        let target = try DownstreamHTTPTarget(url: url)
        let client = DownstreamHTTP.make(readTimeout: .seconds(30))
        let warden = DownstreamHTTPClient(readTimeout: .seconds(30))
        let clients: [(name: String, post: () async throws -> Void)] = [
            ("async-http-client", { try await Self.post(client, url: url) }),
            ("Warden's client", { try await Self.post(warden, target) }),
        ]
        do {
            try await measure(clients)
        } catch {
            try? await client.shutdown()
            warden.shutdown()
            throw error
        }
        try await client.shutdown()
        warden.shutdown()
    }

    func measure(_ clients: [(name: String, post: () async throws -> Void)]) async throws {
        if let only {
            guard let chosen = ["ahc": 0, "warden": 1][only] else { throw ValidationError("--only is ahc or warden") }
            for _ in 0..<requests { try await clients[chosen].post() }
            print("done: \(requests) requests through \(clients[chosen].name)")
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
                    format: "round %d: async-http-client %.1f µs CPU, %.1f µs wall a request; Warden's client %.1f µs CPU, %.1f µs wall",
                    round + 1, cpu[0].last!, wall[0].last!, cpu[1].last!, wall[1].last!))
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        print(
            String(
                format:
                    "one request, medians of %d rounds of %d: async-http-client %.1f µs CPU (%.1f µs wall), Warden's client %.1f µs CPU (%.1f µs wall): %.0f%% of the CPU",
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

    static func post(_ client: DownstreamHTTPClient, _ target: DownstreamHTTPTarget) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: "application/json, text/event-stream")
        headers.add(name: "MCP-Protocol-Version", value: "2025-11-25")
        let response = try await client.execute(
            .POST, target, headers: headers, body: ByteBuffer(string: body), deadline: .now() + .seconds(30), maximumBodyBytes: 1 << 20)
        guard response.status == .ok, case .whole(let answer) = response.body, answer.readableBytes > 0 else {
            throw ValidationError("the server answered HTTP \(response.status.code)")
        }
    }

    /// This process's CPU time so far (user and system), in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
