import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP

/// When a registered server's processes run: started at boot or on first use, stopped after an idle
/// time, and how many instances may run at once.
package struct PoolPolicy: Sendable, Equatable {
    /// Start one instance with the gateway (else on first need: a listing or a call).
    package var startAtBoot: Bool
    /// Stop instances unused for this long (nil: never). At boot-started servers keep one running.
    package var idleTimeout: Duration?
    /// Instances at most; another starts while every running one is busy.
    package var maximumInstances: Int

    package init(startAtBoot: Bool = true, idleTimeout: Duration? = nil, maximumInstances: Int = 1) {
        self.startAtBoot = startAtBoot
        self.idleTimeout = idleTimeout
        self.maximumInstances = max(1, maximumInstances)
    }

    /// Instances that stay up whatever the load.
    var minimumInstances: Int { startAtBoot ? 1 : 0 }
}
