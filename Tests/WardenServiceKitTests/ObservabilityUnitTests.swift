import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import ServiceContextModule
import Testing
import Tracing
import WardenContracts

@testable import WardenServiceKit

@Suite struct ObservabilityUnitTests {
    @Test func requestIDsAreTakenOnlyWhenWellFormed() {
        for good in ["a", "req-1", "0f8c.2:x_Y", String(repeating: "z", count: 128)] { #expect(RequestID.isWellFormed(good), "\(good)") }
        for bad in ["", "with space", "quote\"", "new\nline", "é", String(repeating: "z", count: 129)] {
            #expect(!RequestID.isWellFormed(bad), "\(bad)")
        }
        #expect(RequestID.isWellFormed(RequestID.make()))
    }

    @Test func everyResponseCarriesTheRequestIDAndErrorsToo() async throws {
        let router = Router(context: WardenRequestContext.self)
        router.middlewares.add(ObservabilityMiddleware())
        router.get("/seen") { _, _ in RequestID.current ?? "none" }
        router.get("/fails") { _, _ -> String in throw HTTPError(.conflict, message: "no") }
        router.get("/breaks") { _, _ -> String in throw CancellationError() }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/seen", method: .get, headers: [HTTPField.Name("X-Request-Id")!: "client-chosen-1"]) { response in
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] == "client-chosen-1")
                #expect(String(buffer: response.body) == "client-chosen-1", "the handler's task knows the id")
            }
            try await client.execute(uri: "/seen", method: .get, headers: [HTTPField.Name("X-Request-Id")!: "not well formed"]) { response in
                let id = response.headers[HTTPField.Name("X-Request-Id")!] ?? ""
                #expect(id != "not well formed" && RequestID.isWellFormed(id))
                #expect(String(buffer: response.body) == id)
            }
            try await client.execute(uri: "/fails", method: .get) { response in
                #expect(response.status == .conflict)
                #expect(response.headers[HTTPField.Name("X-Request-Id")!].map(RequestID.isWellFormed) == true)
            }
            try await client.execute(uri: "/breaks", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(response.headers[HTTPField.Name("X-Request-Id")!].map(RequestID.isWellFormed) == true, "unexpected errors too")
                #expect(!String(buffer: response.body).contains("Cancellation"), "an error's text is not sent")
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] != nil)
            }
        }
    }

    @Test func probesAnswerHeadAsGet() async throws {
        let health = HealthState(service: .vault, instanceID: "i-1", version: "1.2.3")
        let router = Router(context: WardenRequestContext.self)
        OperationsRoutes.add(to: router, readiness: OperationsRoutes.instanceReadiness(health), metrics: nil)
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/livez", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == 0)
            }
            try await client.execute(uri: "/readyz", method: .head) { response in
                #expect(response.status == .serviceUnavailable)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .notFound, "served on its own listener when WARDEN_METRICS_PORT is set")
            }
        }
    }

    @Test func logLinesNameTheirRequest() throws {
        var context = ServiceContext.topLevel
        context.requestID = "req-in-logs"
        let metadata = ServiceContext.withValue(context) { RequestID.metadataProvider.get() }
        #expect(metadata["request.id"] == "req-in-logs")
        #expect(RequestID.metadataProvider.get()["request.id"] == nil, "outside a request, no id")
        let span = WardenTracer(buffer: SpanBuffer(), sampleRatio: 1).start(
            "t", parent: SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ofKind: .server)
        let tracedMetadata = ServiceContext.withValue(context) { WardenTrace.$currentSpan.withValue(span) { RequestID.metadataProvider.get() } }
        #expect(tracedMetadata["trace.id"] == "4bf92f3577b34da6a3ce929d0e0e4736" && tracedMetadata["span.id"] == .string(span.spanContext.spanID.hex))
        #expect(tracedMetadata["request.id"] == "req-in-logs")
        let line = try #require(
            JSONLogHandler.render(label: "t", level: .info, message: "hello", metadata: metadata, time: Date()))
        #expect(String(decoding: line, as: UTF8.self).contains(#""request.id":"req-in-logs""#))
    }

    @Test func observabilitySettingsAreChecked() async throws {
        let configured = try await ServiceConfiguration.load(
            service: .gateway,
            environment: ["WARDEN_METRICS_PORT": "9464", "WARDEN_OTLP_ENDPOINT": "http://collector:4318", "WARDEN_TRACE_SAMPLE_RATIO": "0.25"])
        #expect(configured.metricsPort == 9464)
        #expect(configured.otlpEndpoint == "http://collector:4318")
        #expect(configured.traceSampleRatio == 0.25)
        let defaults = try await ServiceConfiguration.load(service: .gateway, environment: [:])
        #expect(defaults.metricsPort == nil && defaults.otlpEndpoint == nil && defaults.traceSampleRatio == 1)
        for (key, value, named) in [
            ("WARDEN_OTLP_ENDPOINT", "collector:4318", "WARDEN_OTLP_ENDPOINT"), ("WARDEN_TRACE_SAMPLE_RATIO", "2", "WARDEN_TRACE_SAMPLE_RATIO"),
            ("WARDEN_METRICS_PORT", "70000", "WARDEN_METRICS_PORT"), ("WARDEN_METRICS_PORT", "0", "WARDEN_METRICS_PORT"),
            ("WARDEN_METRICS_PORT", "8080", "WARDEN_METRICS_PORT"),
        ] {
            do {
                _ = try await ServiceConfiguration.load(service: .gateway, environment: [key: value])
                Issue.record("\(key)=\(value) was accepted")
            } catch {
                #expect("\(error)".contains(named), "\(error)")
            }
        }
        #expect(try WardenTracing.bootstrap(defaults, logger: Logger(label: "test")) == nil, "no endpoint: no tracer, nothing exported")
        #expect(WardenTracing.shown("https://user:pw@collector:4318/v1/traces?token=t") == "https://collector:4318")
        #expect(WardenTracing.tracesURL("http://c:4318") == "http://c:4318/v1/traces")
        #expect(WardenTracing.tracesURL("http://c:4318/") == "http://c:4318/v1/traces")
        #expect(WardenTracing.tracesURL("http://c:4318/v1/traces") == "http://c:4318/v1/traces")
    }

    @Test func everyMetricHasHelpText() {
        let registry = PrometheusCollectorRegistry()
        let factory = WardenMetrics.Factory(registry: registry)
        _ = factory.makeCounter(label: "warden_mcp_requests_total", dimensions: [("method", "tools/call")])
        _ = factory.makeTimer(label: "warden_mcp_request_duration_seconds", dimensions: [])
        let text = registry.emitToString()
        #expect(text.contains("# HELP warden_mcp_requests_total MCP requests answered"))
        #expect(text.contains("# HELP warden_mcp_request_duration_seconds "))
        #expect(text.contains(#"warden_mcp_request_duration_seconds_bucket{le="0.0001"}"#), "seconds, from 100 µs")
    }

    @Test func requestIDsAreWellFormed() {
        #expect(RequestID.isWellFormed(RequestID.make()))
    }
}
