import Foundation
import Logging
import ServiceLifecycle
import WardenContracts
import WardenNATS

/// Hears every change the approvals service announces: wakes the calls waiting on this gateway and
/// feeds the approvers connected here.
package struct ApprovalChanges: Service {
    let bus: NATSConnection?
    let waiters: ApprovalWaiters
    let feeds: ApproverFeeds
    let logger: Logger

    package init(bus: NATSConnection?, waiters: ApprovalWaiters, feeds: ApproverFeeds, logger: Logger) {
        self.bus = bus
        self.waiters = waiters
        self.feeds = feeds
        self.logger = logger
    }

    package func run() async throws {
        guard let bus else { return try await gracefulShutdown() }
        let changes = try bus.subscribe(ApprovalEndpoints.changesSubject, queue: nil)
        await withGracefulShutdownHandler {
            for await message in changes {
                guard let change = try? EnvelopeCoding.decoder().decode(ApprovalChange.self, from: message.payload) else {
                    logger.warning("ignoring a malformed approval change")
                    continue
                }
                waiters.changed(change.request.id)
                feeds.deliver(change)
            }
        } onGracefulShutdown: {
            changes.unsubscribe()
        }
    }
}
