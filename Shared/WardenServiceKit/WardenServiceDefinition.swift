import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import PostgresNIO
import ServiceLifecycle
import WardenContracts
import WardenNATS

/// What the shared runner hands to a service's domain code.
public struct ServiceRuntime: Sendable {
    public let configuration: ServiceConfiguration
    public let logger: Logger
    public let bus: NATSConnection
    public let database: DatabasePool
    public let health: HealthState
    /// Opens once migrations are applied; domain services wait on it before taking requests.
    public let startup: StartupGate
    /// Typed calls to the other services.
    public let client: ServiceClient
}

/// A Warden service: its name, its schema's migrations, and its domain. The shared runner
/// (`WardenServiceMain`) does the rest: configuration, logging, metrics, PostgreSQL, NATS,
/// migrations, heartbeats, the health responder and the HTTP listener.
public protocol WardenServiceDefinition: Sendable {
    static var service: WardenServiceName { get }
    static var migrations: [Migration] { get }

    init(runtime: ServiceRuntime) async throws

    /// Long-running domain pieces (NATS responders, consumers), started after NATS and PostgreSQL.
    var services: [any Service] { get }

    /// Adds the service's own HTTP routes (the gateway's API; the others have none yet).
    func addRoutes(to router: Router<WardenRequestContext>)

    /// The service's WebSocket routes, if it has any (the gateway's approvers' channel): its HTTP/1
    /// listener then also accepts WebSocket upgrades on them. Other connections are plain HTTP/1
    /// after their first request.
    /// WebSocket routes, if the service has any: built with `webSocketRouter()`, so that the
    /// upgrade's answer gets its request id, metrics and span as every other answer does.
    var webSocketRoutes: Router<BasicWebSocketRequestContext>? { get }

    /// What `/readyz` reports. Defaults to this instance's own checks.
    var readiness: OperationsRoutes.Readiness? { get }

    /// Sets the gauges that describe the service's state, just before `/metrics` is rendered.
    func collectMetrics() async
}

extension WardenServiceDefinition {
    public func addRoutes(to router: Router<WardenRequestContext>) {}
    public var readiness: OperationsRoutes.Readiness? { nil }
    public func collectMetrics() async {}
    public var webSocketRoutes: Router<BasicWebSocketRequestContext>? { nil }
}

/// A router for a service's WebSocket routes whose upgrade answers are observed as every other
/// answer (request id, metrics, span). Hummingbird applies a router's middleware only to the routes
/// added after it, hence a router made with it.
package func webSocketRouter() -> Router<BasicWebSocketRequestContext> {
    let router = Router(context: BasicWebSocketRequestContext.self)
    router.add(middleware: ObservabilityMiddleware())
    return router
}
