import Foundation
import Hummingbird
import HummingbirdTesting
import Prometheus
import Testing
import WardenContracts

@testable import WardenServiceKit

@Suite struct OperationsRoutesTests {
    @Test func livezReadyzMetrics() async throws {
        let health = HealthState(service: .vault, instanceID: "i-1", version: "1.2.3")
        let router = Router(context: WardenRequestContext.self)
        OperationsRoutes.add(
            to: router, readiness: OperationsRoutes.instanceReadiness(health), metrics: MetricsEndpoint(registry: PrometheusCollectorRegistry()))
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/livez", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try EnvelopeCoding.decoder().decode(InstanceHealth.self, from: Data(response.body.readableBytesView))
                #expect(body.ready == false)
                #expect(body.checks["database"]?.ok == false)
            }
            for check in HealthState.requiredChecks { health.set(check, ok: true) }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
            health.markStopping()
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            }
        }
    }

    @Test func startupGateOpensWaiters() async throws {
        let gate = StartupGate()
        async let waited: Void = gate.wait()
        try await Task.sleep(for: .milliseconds(10))
        gate.open()
        try await waited
        try await gate.wait()
        #expect(gate.isOpen)
    }

    @Test func startupGateWaitIsCancellable() async {
        let gate = StartupGate()
        let task = Task { try await gate.wait() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}
