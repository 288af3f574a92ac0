import Foundation
import Testing
import WardenCLI
import WardenContracts

@testable import WardenGateway

@Suite struct MeshHealthViewTests {
    func health(_ service: WardenServiceName, _ id: String, ready: Bool = true, alive: Bool = true, version: String = "1.0.0") -> InstanceHealth {
        InstanceHealth(
            service: service,
            instanceID: id,
            version: version,
            startedAt: Date(timeIntervalSince1970: 0),
            ready: ready,
            alive: alive,
            checks: ["database": DependencyCheck(ok: ready, detail: ready ? nil : "connection refused")]
        )
    }

    func summary(_ view: MeshHealthView, _ service: WardenServiceName, at now: ContinuousClock.Instant) -> ServiceHealthSummary {
        view.summaries(at: now).first { $0.service == service }!
    }

    @Test func everyServiceIsDownUntilHeard() {
        let view = MeshHealthView()
        let summaries = view.summaries(at: .now)
        #expect(summaries.map(\.service) == WardenServiceName.allCases)
        #expect(summaries.allSatisfy { $0.status == .down && $0.instances.isEmpty })
    }

    @Test func instancesCountAndExpire() {
        var view = MeshHealthView(expiry: .seconds(3))
        let start = ContinuousClock.now
        view.record(health(.policy, "a"), at: start)
        view.record(health(.policy, "b", version: "1.1.0"), at: start + .seconds(2))
        var policy = summary(view, .policy, at: start + .seconds(2))
        #expect(policy.status == .up)
        #expect(policy.readyInstances == 2)
        #expect(policy.versions == ["1.0.0", "1.1.0"])
        policy = summary(view, .policy, at: start + .seconds(4))
        #expect(policy.instances.map(\.instanceID) == ["b"])
        policy = summary(view, .policy, at: start + .seconds(6))
        #expect(policy.status == .down)
        view.prune(at: start + .seconds(6))
        #expect(summary(view, .policy, at: start + .seconds(6)).instances.isEmpty)
    }

    @Test func anInstanceIsAliveUntilItsHeartbeatsStopOrItSaysGoodbye() {
        var view = MeshHealthView(expiry: .seconds(3))
        let start = ContinuousClock.now
        view.record(health(.gateway, "g1"), at: start)
        view.record(health(.gateway, "g2"), at: start)
        #expect(view.isAlive(.gateway, instance: "g1", at: start + .seconds(2)))
        #expect(!view.isAlive(.gateway, instance: "g1", at: start + .seconds(4)), "silent for longer than the expiry")
        #expect(!view.isAlive(.vault, instance: "g1", at: start), "another service's instance")
        view.record(health(.gateway, "g2", alive: false), at: start + .seconds(1))
        #expect(!view.isAlive(.gateway, instance: "g2", at: start + .seconds(1)), "a goodbye ends it at once")
    }

    @Test func aliveButNotReadyIsDegraded() {
        var view = MeshHealthView()
        let now = ContinuousClock.now
        view.record(health(.vault, "a", ready: false), at: now)
        #expect(summary(view, .vault, at: now).status == .degraded)
        view.record(health(.vault, "b"), at: now)
        #expect(summary(view, .vault, at: now).status == .up)
    }

    @Test func goodbyeRemovesAtOnce() {
        var view = MeshHealthView()
        let now = ContinuousClock.now
        view.record(health(.audit, "a"), at: now)
        view.record(health(.audit, "a", ready: false, alive: false), at: now)
        #expect(summary(view, .audit, at: now).status == .down)
    }

    @Test func meshStatusWording() {
        let up = WardenServiceName.allCases.map {
            ServiceHealthSummary(service: $0, status: .up, readyInstances: 1, instances: [health($0, "x")], versions: ["1.0.0"])
        }
        var some = up
        some[2].status = .down
        #expect(GatewayService.meshStatus(own: health(.gateway, "g"), services: up).status == "ready")
        #expect(GatewayService.meshStatus(own: health(.gateway, "g"), services: some).status == "degraded")
        #expect(GatewayService.meshStatus(own: health(.gateway, "g", ready: false), services: up).status == "not_ready")
    }

    @Test func statusTableShowsEveryServiceAndWhyNotReady() {
        var view = MeshHealthView()
        let now = ContinuousClock.now
        view.record(health(.gateway, "g1"), at: now)
        view.record(health(.vault, "v1"), at: now)
        view.record(health(.vault, "v2"), at: now)
        view.record(health(.policy, "p1", ready: false), at: now)
        let status = GatewayService.meshStatus(own: health(.gateway, "g1"), services: view.summaries(at: now))
        let table = StatusReport.render(status)
        #expect(table.contains("mesh: degraded"))
        #expect(table.contains("vault      up        2/2    2          1.0.0"))
        #expect(table.contains("policy     degraded  0/1    1          1.0.0"))
        #expect(table.contains("audit      down      0/0    0          -"))
        #expect(table.contains("policy p1 not ready: database: connection refused"))
    }

    @Test func statusTableShowsMCPServers() {
        var status = GatewayService.meshStatus(own: health(.gateway, "g1"), services: MeshHealthView().summaries(at: .now))
        status.mcpServers = [
            MCPServerHealth(id: "git", state: "ready", detail: nil, tools: 12, prompts: 0, restarts: 0),
            MCPServerHealth(id: "time", state: "failed", detail: "the process exited (exited(1))", tools: 0, prompts: 0, restarts: 3),
        ]
        let table = StatusReport.render(status)
        #expect(table.contains("MCP SERVER  STATE   TOOLS  PROMPTS  RESTARTS"))
        #expect(table.contains("git         ready   12     0        0"))
        #expect(table.contains("time not ready: the process exited (exited(1))"))
    }
}
