import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenNATS

/// Listens to every service's heartbeats and keeps the gateway's `MeshHealthView`. Every gateway
/// replica listens to the same broadcast, so replicas agree without sharing state.
package final class MeshHealthMonitor: Service, Sendable {
    private let view: Mutex<MeshHealthView>
    private let bus: any MessageBus
    private let logger: Logger
    private let expiry: Duration
    /// When this monitor started listening: before a full expiry has passed, silence proves nothing.
    private let listeningSince = Mutex<ContinuousClock.Instant?>(nil)

    package init(bus: any MessageBus, expiry: Duration = .seconds(3), logger: Logger) {
        self.expiry = expiry
        self.view = Mutex(MeshHealthView(expiry: expiry))
        self.bus = bus
        self.logger = logger
    }

    package func run() async throws {
        let heartbeats = try bus.subscribe(PlatformSubjects.allHeartbeats, queue: nil)
        listeningSince.withLock { $0 = .now }
        let decoder = EnvelopeCoding.decoder()
        await withGracefulShutdownHandler {
            var lastStatus: [WardenServiceName: ServiceHealthSummary.Status] = [:]
            for await message in heartbeats {
                guard let health = try? decoder.decode(InstanceHealth.self, from: message.payload) else {
                    logger.debug("ignoring malformed heartbeat", metadata: ["nats.subject": "\(message.subject)"])
                    continue
                }
                let now = ContinuousClock.now
                let summaries = view.withLock { view in
                    view.record(health, at: now)
                    view.prune(at: now)
                    return view.summaries(at: now)
                }
                for summary in summaries where lastStatus[summary.service] != summary.status {
                    if lastStatus[summary.service] != nil || summary.status != .down {
                        logger.info(
                            "service \(summary.status.rawValue)",
                            metadata: ["service": "\(summary.service.rawValue)", "instances.ready": "\(summary.readyInstances)"])
                    }
                    lastStatus[summary.service] = summary.status
                }
            }
        } onGracefulShutdown: {
            heartbeats.unsubscribe()
        }
    }

    /// Whether `instance` of `service` sent a heartbeat within the expiry (a few seconds). An
    /// instance counts as alive until this monitor has listened for a whole expiry.
    package func isAlive(_ service: WardenServiceName, instance: String) -> Bool {
        let now = ContinuousClock.now
        guard let since = listeningSince.withLock({ $0 }), now - since > expiry else { return true }
        return view.withLock { $0.isAlive(service, instance: instance, at: now) }
    }

    /// The current summaries (instances that went silent count as gone even without a new heartbeat).
    package func summaries() -> [ServiceHealthSummary] {
        let now = ContinuousClock.now
        return view.withLock { $0.summaries(at: now) }
    }
}
