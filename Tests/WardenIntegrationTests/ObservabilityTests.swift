import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// Metrics, traces and request ids through the real processes: an OTLP receiver decoding what the
/// services export, the official Python client making a scripted run of calls through two servers,
/// and `promtool` reading every service's `/metrics`.
@Suite(.serialized) struct ObservabilityTests {
    static let key = "sk-obs-7c1d9e2f4a6b8c0d1e3f5a7b9c2d4e6f"
    static let argument = "arg-secret-4f2a9c7e1b3d5f6a8c0e"

    struct Span: Decodable {
        var service: String
        var traceID: String
        var spanID: String
        var parentSpanID: String
        var name: String
        var kind: Int
        var start: UInt64
        var end: UInt64
        var status: Int
        var attributes: [String: String]

        enum CodingKeys: String, CodingKey {
            case service, name, attributes, kind, start, end, status
            case traceID = "trace_id"
            case spanID = "span_id"
            case parentSpanID = "parent_span_id"
        }
    }

    func spans(_ file: URL) -> [Span] {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Span.self, from: Data($0.utf8)) }
    }

    func get(_ url: String, headers: [(String, String)] = []) async throws -> (status: Int, body: String, headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 8 << 20)), response.headers)
    }

    /// `promtool check metrics` on an exposition: its exit status and what it said.
    func promtool(_ exposition: String) async throws -> (status: Int32?, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try Data(exposition.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let child = try ChildProcess(
            name: "promtool", executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "promtool check metrics < \(file.path)"])
        return (await child.waitForExit(timeout: .seconds(30)), child.output)
    }

    /// The value of one sample in an exposition (`name{labels} value`).
    func sample(_ exposition: String, _ series: String) -> Double? {
        for line in exposition.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func metricsTracesAndRequestIDsFollowEveryCall() async throws {
        let receiverPort = freePort()
        let spanFile = FileManager.default.temporaryDirectory.appendingPathComponent("spans-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: spanFile) }
        let receiver = try ChildProcess(
            name: "otlp-receiver", executable: URL(fileURLWithPath: try StdioServerTests.python),
            arguments: [
                try TestEnvironment.repository.appendingPathComponent("Tests/Python/otlp_receiver.py").path, "\(receiverPort)", spanFile.path,
            ])
        defer { kill(receiver.pid, SIGKILL) }
        let receiving = await eventually(timeout: .seconds(30)) { (try? await get("http://127.0.0.1:\(receiverPort)/")) != nil }
        #expect(receiving, "the OTLP receiver did not start: \(receiver.output)")
        let (http, httpURL) = try await CredentialInjectionTests().httpServer()
        defer { kill(http.pid, SIGKILL) }
        let python = try StdioServerTests.python
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/credential_echo_server.py").path

        try await withMesh { mesh in
            let tracing = ["WARDEN_OTLP_ENDPOINT": "http://127.0.0.1:\(receiverPort)", "OTEL_BSP_SCHEDULE_DELAY": "100"]
            let metricsPort = freePort()
            // Every use of a credential asks the vault: the vault is on each call's path.
            try mesh.start(
                .gateway, extra: tracing.merging(["WARDEN_METRICS_PORT": "\(metricsPort)", "WARDEN_CREDENTIAL_CACHE_SECONDS": "0"]) { $1 })
            var ports: [WardenServiceName: Int] = [:]
            for service in [WardenServiceName.vault, .policy, .approvals, .audit] {
                ports[service] = freePort()
                // The vault logs each request it handles (debug): its lines must name the caller's request.
                let logging = service == .vault ? ["WARDEN_LOG_LEVEL": "debug"] : [:]
                // Sampling nothing of their own, the vault and policy record only what the gateway
                // decided to record (a decision that comes over NATS from another service is followed).
                let sampling = service == .vault || service == .policy ? ["WARDEN_TRACE_SAMPLE_RATIO": "0"] : [:]
                try mesh.start(
                    service,
                    extra: tracing.merging(["WARDEN_HTTP_PORT": "\(ports[service]!)"].merging(logging) { $1 }.merging(sampling) { $1 }) { $1 })
            }
            // A second gateway without WARDEN_OTLP_ENDPOINT exports nothing, even though the standard
            // OpenTelemetry variables name the receiver.
            let untracedPort = freePort()
            try mesh.start(
                .gateway, name: "gateway-untraced",
                extra: [
                    "WARDEN_HTTP_PORT": "\(untracedPort)", "WARDEN_CREDENTIAL_CACHE_SECONDS": "0",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(receiverPort)", "OTEL_TRACES_EXPORTER": "otlp",
                ])
            try await mesh.withAgent {
                let admin = CredentialInjectionTests()
                try await admin.setSecret(mesh, "obs/key", Self.key)
                let web = try await admin.admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "web", "org": "acme", "url": "\#(httpURL)", "headers": {"Authorization": "Bearer ${secret://obs/key}"}}"#)
                #expect(web.status == 201, "\(web.body)")
                let local = try await admin.admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "local", "org": "acme", "command": "\#(python)", "args": ["\#(script)", "stdio"], "env": {"API_KEY": "secret://obs/key"}}"#
                )
                #expect(local.status == 201, "\(local.body)")
                let ready = await eventually(timeout: .seconds(60)) {
                    let body = (try? await admin.admin(mesh, .GET, "/admin/v1/servers"))?.body ?? ""
                    return body.components(separatedBy: "\"ready\"").count - 1 >= 2
                }
                #expect(ready, "both servers ready")

                // A call that names its request and its trace, and asks not to be recorded (flag 00):
                // a client's flag is not followed (the gateway samples everything here).
                let mcp = mesh.gatewayURL + "/mcp"
                let session = try #require(try await EventStreamTests.post(mcp, EventStreamTests.initialize).session)
                _ = try await EventStreamTests.post(mcp, #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, session: session)
                let traceID = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                let clientSpan = "00f067aa0ba902b7"
                let call = EventStreamTests.request(
                    mcp, #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"web__request_headers","arguments":{}}}"#,
                    session: session, headers: [("X-Request-Id", "obs-test-1"), ("traceparent", "00-\(traceID)-\(clientSpan)-00")])
                let response = try await HTTPClient.shared.execute(call, timeout: .seconds(30))
                let answer = String(buffer: try await response.body.collect(upTo: 1 << 20))
                #expect(response.headers.first(name: "X-Request-Id") == "obs-test-1")
                #expect(answer.contains("00-\(traceID)-"), "the HTTP server got the trace in its traceparent header: \(answer)")
                // (The server joins a header sent twice with ", ".)
                #expect(!answer.contains(", 00-\(traceID)-"), "one traceparent header, not two: \(answer)")
                // A stdio server gets it in `_meta`; a client without headers names its trace there too.
                let metaTrace = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                let metaCall = try await EventStreamTests.post(
                    mcp,
                    #"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"local__meta","arguments":{},"_meta":{"traceparent":"00-\#(metaTrace)-\#(clientSpan)-01"}}}"#,
                    session: session)
                #expect(metaCall.body.contains("00-\(metaTrace)-"), "the stdio server got the trace in _meta: \(metaCall.body)")
                #expect(
                    mesh.processes["vault"]?.output.contains("obs-test-1") == true,
                    "the vault's log line for the call names its request: \(mesh.processes["vault"]?.output.suffix(2000) ?? "")")
                // A malformed id is replaced, not echoed.
                for bad in ["bad id", String(repeating: "a", count: 129), "id\"<script>"] {
                    let generated = try await get(mesh.gatewayURL + "/livez", headers: [("X-Request-Id", bad)])
                    let made = generated.headers.first(name: "X-Request-Id") ?? ""
                    #expect(made.count == 36 && made != bad, "\(made)")
                }
                // HEAD on the probes answers as GET does.
                for path in ["/livez", "/readyz"] {
                    var head = HTTPClientRequest(url: mesh.gatewayURL + path)
                    head.method = .HEAD
                    let answered = try await HTTPClient.shared.execute(head, timeout: .seconds(10))
                    let got = try await get(mesh.gatewayURL + path)
                    #expect(answered.status == .ok && Int(answered.status.code) == got.status, "HEAD \(path): \(answered.status), GET \(got.status)")
                }

                // A call through the gateway without tracing.
                let untracedTrace = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                let untracedURL = "http://127.0.0.1:\(untracedPort)/mcp"
                let untracedSession = try #require(try await EventStreamTests.post(untracedURL, EventStreamTests.initialize).session)
                let untracedCall = EventStreamTests.request(
                    untracedURL, #"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"web__whoami","arguments":{}}}"#,
                    session: untracedSession, headers: [("traceparent", "00-\(untracedTrace)-\(clientSpan)-01")])
                let untracedAnswer = try await HTTPClient.shared.execute(untracedCall, timeout: .seconds(30))
                let untracedBody = String(buffer: try await untracedAnswer.body.collect(upTo: 1 << 20))
                #expect(untracedAnswer.status == .ok && untracedBody.contains("authorized"), "\(untracedBody)")

                // The scripted run through two servers, with a secret-bearing argument, and a call the
                // policy denies.
                let policy = FileManager.default.temporaryDirectory.appendingPathComponent("obs-policy-\(UUID().uuidString).yaml")
                try Data(
                    """
                    rules:
                      - {id: all, effect: allow, tools: ["*"], prompts: ["*"], resources: ["*"]}
                      - {id: no-urls, effect: deny, tools: ["web__request_url"]}

                    """.utf8
                ).write(to: policy)
                defer { try? FileManager.default.removeItem(at: policy) }
                let applied = try await runWarden(
                    ["policy", "apply", "--org", "acme", "-f", policy.path], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect(applied.status == 0, "\(applied.output)")
                let run = try await runPythonCheck(
                    "observability_check.py",
                    [mcp, Self.argument, "web__echo=3", "local__echo=2", "local__whoami=1", "web__missing=1", "web__request_url=2"],
                    timeout: .seconds(90))
                #expect(run.status == 0, "\(run.output)")

                // Metrics: exact counts per server and tool, histograms with the same totals.
                #expect(try await get(mesh.gatewayURL + "/metrics").status == 404, "the public port does not serve /metrics")
                let metrics = try await get("http://127.0.0.1:\(metricsPort)/metrics").body
                func requests(_ server: String, _ tool: String, _ outcome: String) -> Double? {
                    sample(metrics, #"warden_mcp_requests_total{method="tools/call",server="\#(server)",tool="\#(tool)",outcome="\#(outcome)"}"#)
                }
                #expect(requests("web", "echo", "ok") == 3, "\(metrics)")
                #expect(requests("local", "echo", "ok") == 2)
                #expect(requests("local", "whoami", "ok") == 1)
                #expect(requests("web", "request_headers", "ok") == 1)
                #expect(requests("local", "meta", "ok") == 1)
                #expect(requests("web", "request_url", "denied") == 2, "a denied call names its server and tool")
                // A tool the server does not list is counted without its name.
                let unlisted = metrics.split(separator: "\n").filter { $0.hasPrefix("warden_mcp_requests_total{") && $0.contains("missing") }
                #expect(unlisted.isEmpty, "\(unlisted)")
                #expect(sample(metrics, #"warden_mcp_request_duration_seconds_count{method="tools/call",server="web"}"#) == 7)
                #expect(sample(metrics, #"warden_mcp_request_duration_seconds_count{method="tools/call",server="local"}"#) == 4)
                #expect(sample(metrics, #"warden_mcp_downstream_duration_seconds_count{server="local",method="tools/call"}"#) == 4)
                #expect(sample(metrics, #"warden_mcp_server_up{server="web"}"#) == 1)
                #expect((sample(metrics, #"warden_nats_requests_total{subject="warden.policy.policies.decide",outcome="ok"}"#) ?? 0) >= 1)
                // The durable consumers' backlog, as NATS counts it.
                for consumer in ["audit-store", "approval-notifier"] {
                    let lines = metrics.split(separator: "\n").filter {
                        $0.hasPrefix("warden_jetstream_consumer_ack_pending{") && $0.contains(#"consumer="\#(consumer)""#)
                    }
                    #expect(lines.count == 1, "the \(consumer) consumer's acknowledgements pending: \(lines)")
                }
                // Every service's exposition passes promtool.
                var expositions = ["gateway": metrics]
                for (service, port) in ports { expositions[service.rawValue] = try await get("http://127.0.0.1:\(port)/metrics").body }
                // Every service's PostgreSQL pool: its statements timed (its migrations and heartbeats at
                // least), its connections as PostgreSQL counts them (read, not unknown), its size.
                for (service, exposition) in expositions {
                    #expect((sample(exposition, "warden_postgres_query_duration_seconds_count") ?? 0) >= 1, "\(service)'s statements")
                    let connections = exposition.split(separator: "\n").filter { $0.hasPrefix("warden_postgres_connections{") }
                    let open = connections.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                    #expect(open.count == 5 && open.allSatisfy { $0 >= 0 } && open.reduce(0, +) >= 1, "\(service)'s connections: \(connections)")
                    #expect(sample(exposition, "warden_postgres_connections_max") == 10, "\(service)'s pool size")
                }
                for (service, exposition) in expositions {
                    let checked = try await promtool(exposition)
                    #expect(checked.status == 0, "promtool on \(service): \(checked.output)")
                    for form in CredentialInjectionTests.forms(Self.key) + [Self.argument, TestMesh.agentToken ?? "-"] {
                        #expect(!exposition.contains(form), "\(service)'s metrics hold a secret")
                    }
                }

                // Traces: the named call is one trace across the gateway, policy and the vault, every
                // span's parent in the trace, the first one's the client's.
                var trace: [Span] = []
                let traced = await eventually(timeout: .seconds(20)) {
                    trace = spans(spanFile).filter { $0.traceID == traceID }
                    return Set(trace.map(\.service)).isSuperset(of: ["warden-gateway", "warden-policy", "warden-vault"])
                }
                #expect(traced, "services in the trace: \(Set(trace.map(\.service))); spans: \(trace.map { "\($0.service) \($0.name)" })")
                let ids = Set(trace.map(\.spanID))
                for span in trace {
                    #expect(ids.contains(span.parentSpanID) || span.parentSpanID == clientSpan, "orphan: \(span.service) \(span.name)")
                }
                #expect(trace.filter { $0.parentSpanID == clientSpan }.count == 1, "one root under the client's span")
                #expect(trace.contains { $0.service == "warden-gateway" && $0.name.hasPrefix("MCP tools/call → web") && $0.kind == 3 })
                #expect(trace.contains { $0.service == "warden-gateway" && $0.name == "MCP tools/call" && $0.kind == 2 }, "the request's span")
                #expect(
                    trace.contains { $0.service == "warden-vault" && $0.kind == 2 }
                        && trace.contains { $0.service == "warden-gateway" && $0.kind == 3 && $0.name.hasPrefix("warden.vault") })
                // The pipeline's stages that do work are spans under the request's, and what a stage asks of
                // another service is a child of it: the policy decision under the policy stage; the forwarded
                // call's client span stands for the forward stage, and the server's shared credentials are
                // resolved under it, as its request goes out. (No approval stage: this call needs none; no
                // credentials stage: the server's credentials are not per user.)
                let request = trace.first { $0.service == "warden-gateway" && $0.name == "MCP tools/call" }
                let byID = Dictionary(trace.map { ($0.spanID, $0) }) { first, _ in first }
                func ancestors(of span: Span) -> [String] {
                    var names: [String] = []
                    var current = byID[span.parentSpanID]
                    while let ancestor = current {
                        names.append(ancestor.name)
                        current = byID[ancestor.parentSpanID]
                    }
                    return names
                }
                let stages = trace.filter { $0.name.hasSuffix(" stage") }
                #expect(stages.map(\.name) == ["policy stage"], "\(stages.map(\.name))")
                #expect(stages.allSatisfy { $0.kind == 1 && $0.parentSpanID == request?.spanID })
                let policyAsked = trace.filter { $0.name.hasPrefix("warden.policy") && $0.kind == 3 }
                #expect(!policyAsked.isEmpty && policyAsked.allSatisfy { ancestors(of: $0).first == "policy stage" })
                let forwarded = trace.filter { $0.name.hasPrefix("MCP tools/call → web") }
                #expect(forwarded.count == 1 && forwarded.allSatisfy { $0.parentSpanID == request?.spanID })
                let vaultAsked = trace.filter { $0.name.hasPrefix("warden.vault") && $0.kind == 3 }
                #expect(
                    !vaultAsked.isEmpty && vaultAsked.allSatisfy { ancestors(of: $0).contains("MCP tools/call → web") },
                    "\(vaultAsked.map { ancestors(of: $0) })")
                #expect(trace.allSatisfy { $0.end >= $0.start && $0.start > 1_700_000_000_000_000_000 }, "times in nanoseconds since 1970")
                #expect(trace.contains { $0.attributes["warden.request.id"] == "obs-test-1" })
                #expect(spans(spanFile).contains { $0.traceID == metaTrace && $0.service == "warden-gateway" }, "the _meta trace is continued")
                // Had that gateway traced, it would have continued the client's trace id, and its spans
                // (and those of the services it asked) would be here by now, as the other traces are.
                let untraced = spans(spanFile).filter { $0.traceID == untracedTrace }
                #expect(untraced.isEmpty, "a gateway without WARDEN_OTLP_ENDPOINT exports nothing: \(untraced.map(\.service))")
                let exported = (try? String(contentsOf: spanFile, encoding: .utf8)) ?? ""
                for form in CredentialInjectionTests.forms(Self.key) + [Self.argument, TestMesh.agentToken ?? "-"] {
                    #expect(!exported.contains(form), "a span holds a secret")
                }

                // The request id is on the call's audit record.
                let recorded = await eventually(timeout: .seconds(20)) {
                    let records = (try? await admin.admin(mesh, .GET, "/admin/v1/audit/records?org=acme&name=web__request_headers"))?.body ?? ""
                    return records.contains("obs-test-1")
                }
                #expect(recorded, "the audit record names the request")
            }
        }
    }
}
