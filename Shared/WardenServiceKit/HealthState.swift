import Foundation
import Synchronization
import WardenContracts

/// What this instance knows about its own health. Written by the heartbeat loop and the start-up
/// sequence, read by `/readyz`, heartbeats and the NATS health responder (cheap: no I/O on read).
public final class HealthState: Sendable {
    public let service: WardenServiceName
    public let instanceID: String
    public let version: String
    public let startedAt: Date
    private let checks = Mutex<[String: DependencyCheck]>([:])
    private let stopping = Atomic<Bool>(false)

    /// The checks that must all pass for the instance to be ready.
    public static let requiredChecks = ["database", "nats", "migrations"]

    public init(service: WardenServiceName, instanceID: String, version: String, startedAt: Date = Date()) {
        self.service = service
        self.instanceID = instanceID
        self.version = version
        self.startedAt = startedAt
        checks.withLock { checks in
            for name in Self.requiredChecks { checks[name] = DependencyCheck(ok: false, detail: "not checked yet") }
        }
    }

    /// A check's state; a detail is shown even when it is ok (a gateway spooling audit events is
    /// ready but says so).
    public func set(_ name: String, ok: Bool, detail: String? = nil) {
        checks.withLock { $0[name] = DependencyCheck(ok: ok, detail: detail) }
    }

    public func markStopping() { stopping.store(true, ordering: .relaxed) }

    public var isReady: Bool {
        !stopping.load(ordering: .relaxed) && checks.withLock { checks in checks.values.allSatisfy(\.ok) }
    }

    public var snapshot: InstanceHealth {
        let current = checks.withLock { $0 }
        let alive = !stopping.load(ordering: .relaxed)
        return InstanceHealth(
            service: service,
            instanceID: instanceID,
            version: version,
            startedAt: startedAt,
            ready: alive && current.values.allSatisfy(\.ok),
            alive: alive,
            checks: current
        )
    }
}
