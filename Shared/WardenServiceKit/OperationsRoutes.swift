import Foundation
import Hummingbird
import Prometheus
import WardenContracts

/// `/livez`, `/readyz` and `/metrics`, which every service serves.
public enum OperationsRoutes {
    /// Computes the `/readyz` answer. The default reports this instance only; the gateway reports the mesh.
    public typealias Readiness = @Sendable () async -> (ready: Bool, body: Data)

    /// `metrics` nil: `/metrics` is served on its own listener (`WARDEN_METRICS_PORT`), not here.
    /// `HEAD` on the probes answers as `GET` does, without the body (load balancers probe with it).
    package static func add(to router: Router<WardenRequestContext>, readiness: @escaping Readiness, metrics: MetricsEndpoint?) {
        let live: @Sendable (Request, WardenRequestContext) async -> Response = { _, _ in
            jsonResponse(.ok, Data(#"{"status":"ok"}"#.utf8))
        }
        let ready: @Sendable (Request, WardenRequestContext) async -> Response = { _, _ in
            let (ready, body) = await readiness()
            return jsonResponse(ready ? .ok : .serviceUnavailable, body)
        }
        router.get("/livez", use: live)
        router.head("/livez") { request, context in await live(request, context).withoutBody }
        router.get("/readyz", use: ready)
        router.head("/readyz") { request, context in await ready(request, context).withoutBody }
        if let metrics { metrics.addRoute(to: router) }
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

extension Response {
    /// The same status and headers with no body: the answer to `HEAD`.
    var withoutBody: Response {
        var response = self
        response.body = ResponseBody()
        return response
    }
}
