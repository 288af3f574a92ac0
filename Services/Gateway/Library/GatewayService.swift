import Foundation
import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The gateway: the only endpoint MCP clients and operators talk to.
///
/// So far it serves the platform's view of the mesh: `/readyz` reports this gateway's own readiness
/// (HTTP 200/503) and, in the body, every service's health and instance count as seen over NATS.
public struct GatewayService: WardenServiceDefinition {
    public static let service = WardenServiceName.gateway
    public static let migrations: [Migration] = [PlatformMigrations.instances]

    public let services: [any Service]
    public let readiness: OperationsRoutes.Readiness?
    let monitor: MeshHealthMonitor

    public init(runtime: ServiceRuntime) async throws {
        let monitor = MeshHealthMonitor(bus: runtime.bus, logger: runtime.logger)
        self.monitor = monitor
        self.services = [monitor]
        let health = runtime.health
        self.readiness = {
            let status = GatewayService.meshStatus(own: health.snapshot, services: monitor.summaries())
            let body = (try? EnvelopeCoding.encoder().encode(status)) ?? Data()
            return (status.gateway.ready, body)
        }
    }

    /// `ready` when this gateway and every service are up; `degraded` when this gateway can serve but
    /// some service is not up; `not_ready` when this gateway itself cannot serve.
    public static func meshStatus(own: InstanceHealth, services: [ServiceHealthSummary]) -> MeshStatus {
        let status: String
        if !own.ready {
            status = "not_ready"
        } else if services.allSatisfy({ $0.status == .up }) {
            status = "ready"
        } else {
            status = "degraded"
        }
        return MeshStatus(status: status, gateway: own, services: services)
    }
}
