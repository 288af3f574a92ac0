import Foundation
import Hummingbird
import Prometheus
import WardenContracts

/// `/livez`, `/readyz` and `/metrics`, which every service serves.
public enum OperationsRoutes {
    /// Computes the `/readyz` answer. The default reports this instance only; the gateway reports the mesh.
    public typealias Readiness = @Sendable () async -> (ready: Bool, body: Data)

    public static func add(to router: Router<WardenRequestContext>, readiness: @escaping Readiness, registry: PrometheusCollectorRegistry) {
        router.get("/livez") { _, _ in
            jsonResponse(.ok, Data(#"{"status":"ok"}"#.utf8))
        }
        router.get("/readyz") { _, _ in
            let (ready, body) = await readiness()
            return jsonResponse(ready ? .ok : .serviceUnavailable, body)
        }
        router.get("/metrics") { _, _ in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer))
            )
        }
    }

    /// The readiness of one instance: its own checks.
    public static func instanceReadiness(_ health: HealthState) -> Readiness {
        {
            let snapshot = health.snapshot
            let body = (try? EnvelopeCoding.encoder().encode(snapshot)) ?? Data()
            return (snapshot.ready, body)
        }
    }

    public static func jsonResponse(_ status: HTTPResponse.Status, _ body: Data) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}
