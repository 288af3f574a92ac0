import Foundation
import Logging
import ServiceLifecycle
import WardenServiceKit

/// Every second, does what is due without anyone acting (`ApprovalStore.settle`) and announces it:
/// a waiting agent hears "expired" (the same as rejected) without asking again.
struct ApprovalExpiry: Service {
    let store: ApprovalStore
    let announcer: ApprovalAnnouncer
    let startup: StartupGate
    let logger: Logger
    var interval: Duration = .seconds(1)

    func run() async throws {
        try await startup.wait()
        var warned = false
        while !Task.isShuttingDownGracefully {
            do {
                await announcer.announce(try await store.settle())
                warned = false
            } catch {
                if !warned { logger.warning("cannot settle approval requests now", metadata: ["error": "\(error)"]) }
                warned = true
            }
            try? await Task.sleep(for: interval)
            try Task.checkCancellation()
        }
    }
}
