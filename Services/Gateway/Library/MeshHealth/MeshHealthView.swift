import WardenContracts

/// The gateway's picture of the mesh, built from heartbeats. A value type without I/O: the monitor
/// feeds it heartbeats and times, tests feed it whatever they like.
package struct MeshHealthView: Sendable {
    struct Sighting: Sendable {
        var health: InstanceHealth
        var seenAt: ContinuousClock.Instant
    }

    /// An instance not heard from for this long is gone (a killed process sends no goodbye).
    package let expiry: Duration
    private var instances: [WardenServiceName: [String: Sighting]] = [:]

    package init(expiry: Duration = .seconds(3)) {
        self.expiry = expiry
    }

    /// Records a heartbeat; a goodbye (`alive: false`) removes the instance at once.
    package mutating func record(_ health: InstanceHealth, at now: ContinuousClock.Instant) {
        if health.alive {
            instances[health.service, default: [:]][health.instanceID] = Sighting(health: health, seenAt: now)
        } else {
            instances[health.service]?[health.instanceID] = nil
        }
    }

    /// Whether `instance` was seen within `expiry`.
    package func isAlive(_ service: WardenServiceName, instance: String, at now: ContinuousClock.Instant) -> Bool {
        guard let sighting = instances[service]?[instance] else { return false }
        return now - sighting.seenAt <= expiry
    }

    /// Forgets instances whose last heartbeat is older than `expiry`.
    package mutating func prune(at now: ContinuousClock.Instant) {
        for service in instances.keys {
            instances[service] = instances[service]?.filter { now - $0.value.seenAt <= expiry }
        }
    }

    /// One summary per service, in a stable order, counting only instances seen within `expiry`.
    package func summaries(at now: ContinuousClock.Instant) -> [ServiceHealthSummary] {
        WardenServiceName.allCases.map { service in
            let live = (instances[service] ?? [:]).values
                .filter { now - $0.seenAt <= expiry }
                .map(\.health)
                .sorted { $0.instanceID < $1.instanceID }
            let ready = live.filter(\.ready).count
            let status: ServiceHealthSummary.Status = ready > 0 ? .up : (live.isEmpty ? .down : .degraded)
            return ServiceHealthSummary(
                service: service,
                status: status,
                readyInstances: ready,
                instances: live,
                versions: Array(Set(live.map(\.version))).sorted()
            )
        }
    }
}
