import Foundation
import Logging
import ServiceLifecycle
import WardenServiceKit

/// Every second, does what is due without anyone acting (`ApprovalStore.settle`) and announces it
/// (a waiting agent hears "expired", the same as rejected, without asking again), and relays the
/// notices waiting for Slack and webhooks.
struct ApprovalExpiry: Service {
    let store: ApprovalStore
    let announcer: ApprovalAnnouncer
    let startup: StartupGate
    let logger: Logger
    var interval: Duration = .seconds(1)

    func run() async throws {
        try await startup.wait()
        var warned = false
        var relayWarned = false
        while !Task.isShuttingDownGracefully {
            do {
                await announcer.announce(try await store.settle())
                warned = false
            } catch {
                if !warned { logger.warning("cannot settle approval requests now", metadata: ["error": "\(error)"]) }
                warned = true
            }
            do {
                try await announcer.relay()
                relayWarned = false
            } catch {
                // Notices wait in the outbox (the gateway creates their stream when it starts).
                if !relayWarned {
                    logger.warning("approval notices wait: the notices stream does not take them yet", metadata: ["error": "\(error)"])
                }
                relayWarned = true
            }
            try? await Task.sleep(for: interval)
            try Task.checkCancellation()
        }
    }
}
