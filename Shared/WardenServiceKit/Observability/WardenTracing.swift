import Foundation
import Logging
import ServiceLifecycle
import Tracing
import WardenContracts

/// Tracing, when `WARDEN_OTLP_ENDPOINT` is set: `WardenTracer` records spans and `OTLPSpanExporter`
/// sends them over OTLP/HTTP (protobuf) every `OTEL_BSP_SCHEDULE_DELAY` milliseconds (default 1000).
/// Unset, no tracer is installed and Warden makes no spans.
enum WardenTracing {
    /// Bootstraps the process's tracer (a process runs one service); returns the exporter, which runs in the service group.
    static func bootstrap(
        _ configuration: ServiceConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger
    ) throws(ConfigurationError) -> (any Service)? {
        guard let endpoint = configuration.otlpEndpoint else { return nil }
        let interval = Duration.milliseconds(
            try ServiceConfiguration.number(
                environment, "OTEL_BSP_SCHEDULE_DELAY", key: "OTEL_BSP_SCHEDULE_DELAY", range: 10...60_000, unit: "milliseconds", default: 1000))
        let buffer = SpanBuffer()
        let tracer = WardenTracer(buffer: buffer, sampleRatio: configuration.traceSampleRatio)
        // Warden's code calls it directly (`WardenTrace`). It is deliberately not bootstrapped into
        // `InstrumentationSystem`: async-http-client would then add a span of its own to every
        // request and a second `traceparent` header beside the one Warden writes (a server may
        // then ignore both), and trace the exporter's own posts. (Its clients still run each
        // request in a span of the no-op global tracer; the downstream client has that switched
        // off, `DownstreamHTTP`.)
        WardenTrace.install(tracer)
        logger.info("tracing: spans go to \(shown(endpoint))", metadata: ["trace.sample.ratio": "\(configuration.traceSampleRatio)"])
        return OTLPSpanExporter(
            buffer: buffer, url: tracesURL(endpoint),
            resource: OTLPEncoder.Resource(
                serviceName: "warden-\(configuration.service.rawValue)", instance: configuration.instanceID, version: WardenVersion.current),
            interval: interval, logger: logger)
    }

    /// The endpoint as logs may show it: scheme, host and port (a user, password or query may be a credential).
    static func shown(_ endpoint: String) -> String {
        guard let url = URL(string: endpoint), let scheme = url.scheme, let host = url.host else { return "(the configured endpoint)" }
        return "\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")"
    }

    /// The receiver's traces path: `/v1/traces` under the endpoint, unless the endpoint names it.
    static func tracesURL(_ endpoint: String) -> String {
        if endpoint.hasSuffix("/v1/traces") { return endpoint }
        return endpoint.hasSuffix("/") ? endpoint + "v1/traces" : endpoint + "/v1/traces"
    }
}
