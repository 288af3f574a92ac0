import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// `/metrics` in Prometheus's text format: on the service's own port, or on a listener of its own
/// (`WARDEN_METRICS_PORT`) so that a public port need not expose it. Values that are states rather
/// than events (connections, spool depth, servers' instances) are read when scraped (`collect`).
package struct MetricsEndpoint: Sendable {
    let registry: PrometheusCollectorRegistry
    let collect: @Sendable () async -> Void

    package init(registry: PrometheusCollectorRegistry = WardenMetrics.registry, collect: @escaping @Sendable () async -> Void = {}) {
        self.registry = registry
        self.collect = collect
    }

    package func addRoute<Context: Hummingbird.RequestContext>(to router: Router<Context>) {
        router.get("/metrics") { _, _ in await render() }
    }

    func render() async -> Response {
        await collect()
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: buffer))
        )
    }

    /// A listener serving `/metrics` only.
    func listener(host: String, port: Int, logger: Logger) -> some Service {
        let router = Router()
        addRoute(to: router)
        return Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                logger.info("metrics listening", metadata: ["http.address": "\(channel.localAddress?.description ?? "?")"])
            }, logger: logger)
    }
}
