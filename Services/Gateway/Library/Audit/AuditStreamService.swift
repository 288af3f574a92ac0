import Logging
import ServiceLifecycle
import WardenNATS
import WardenServiceKit

/// Creates the audit stream (`AuditStream`) that every service writes its events to, retrying until
/// NATS takes it, and checks it again every minute (a stream lost to an operator's mistake or a
/// wiped NATS store comes back; meanwhile the gateway spools): only the gateway may manage streams.
package struct AuditStreamService: Service {
    let bus: NATSConnection
    let logger: Logger

    package init(bus: NATSConnection, logger: Logger) {
        self.bus = bus
        self.logger = logger
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await bus.ensureStream(AuditPublisher.streamSpec)
                    try await bus.ensureConsumer(AuditPublisher.consumerSpec)
                    try? await Task.sleep(for: .seconds(60))
                } catch {
                    logger.warning("cannot create the audit stream; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(2))
                }
            }
        }
        try? await gracefulShutdown()
    }
}
