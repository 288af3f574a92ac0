import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WardenContracts
import WardenNATS

/// Checks this instance's dependencies about once a second and announces the result on
/// `warden.heartbeat.<service>`. The gateway builds its view of the mesh from these announcements.
/// On graceful shutdown it announces `alive: false` so the instance disappears at once.
struct HeartbeatService: Service {
    let health: HealthState
    let bus: any MessageBus
    let database: DatabasePool
    let interval: Duration
    let logger: Logger

    func run() async throws {
        var wasReady: Bool?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await check()
            let ready = health.isReady
            if ready != wasReady {
                logger.info(ready ? "instance ready" : "instance not ready", metadata: health.notReadyMetadata)
                wasReady = ready
            }
            announce()
            try? await Task.sleep(for: interval)
        }
        health.markStopping()
        announce()
    }

    private func check() async {
        let connected = bus.isConnected
        health.set("nats", ok: connected, detail: connected ? nil : "not connected")
        do {
            try await withDatabaseDeadline(.seconds(2), operation: "database ping") { [database] in
                try await database.query("SELECT 1").collect().count
            }
            health.set("database", ok: true)
        } catch {
            health.set("database", ok: false, detail: ServiceDatabase.describe(error))
        }
    }

    private func announce() {
        guard let payload = try? EnvelopeCoding.encoder().encode(health.snapshot) else { return }
        try? bus.publish(PlatformSubjects.heartbeat(health.service), payload: payload, headers: [:], replyTo: nil)
    }
}

extension HealthState {
    var notReadyMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        for (name, check) in snapshot.checks where !check.ok {
            metadata["check.\(name)"] = "\(check.detail ?? "failing")"
        }
        return metadata
    }
}
