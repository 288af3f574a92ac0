import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Stores what every service publishes to the audit stream: a durable JetStream consumer shared by
/// every audit replica (one delivery group), events written in batches (up to `batchSize`, one
/// transaction) and acknowledged only once committed. A replica that dies before committing leaves
/// its events unacknowledged: JetStream delivers them again, and the store skips ids it has.
package final class AuditIngest: Service, Sendable {
    static let batchSize = 500

    let bus: NATSConnection
    let store: AuditStore
    let logger: Logger
    private let pending = Mutex<[JetStreamMessage]>([])

    package init(bus: NATSConnection, store: AuditStore, logger: Logger) {
        self.bus = bus
        self.store = store
        self.logger = logger
    }

    package func run() async throws {
        let subscription = try bus.bindDurable(AuditPublisher.consumerSpec)
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await message in subscription {
                        guard let delivered = JetStreamMessage(message) else { continue }
                        self.pending.withLock { $0.append(delivered) }
                        wake.yield()
                    }
                    wake.finish()
                }
                group.addTask {
                    for await _ in wakeups { await self.drain() }
                    await self.drain()
                }
            }
        } onGracefulShutdown: {
            subscription.unsubscribe()
        }
    }

    /// Writes everything waiting, a batch at a time.
    private func drain() async {
        while true {
            let batch = pending.withLock { pending -> [JetStreamMessage] in
                let taken = Array(pending.prefix(Self.batchSize))
                pending.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            await write(batch)
        }
    }

    private func write(_ batch: [JetStreamMessage]) async {
        var readable: [(message: JetStreamMessage, item: AuditStore.Incoming)] = []
        for message in batch {
            guard let event = try? EnvelopeCoding.decoder().decode(AuditEvent.self, from: message.message.payload) else {
                // Not an audit event this version reads: kept aside as received, not lost and not retried forever.
                await setAside(message, reason: "unreadable as an audit event")
                continue
            }
            readable.append((message, AuditStore.Incoming(event: event, body: String(decoding: message.message.payload, as: UTF8.self))))
        }
        do {
            let stored = try await store.append(readable.map(\.item))
            for entry in readable { try? bus.ack(entry.message) }
            logger.debug("audit events stored", metadata: ["audit.received": "\(readable.count)", "audit.stored": "\(stored)"])
            return
        } catch {
            logger.error("a batch of audit events could not be stored; storing them one by one", metadata: ["error": "\(error)"])
        }
        // One event PostgreSQL refuses must not hold back every other: each on its own, and what is
        // still refused is set aside; if the database itself is away, everything is delivered again.
        for entry in readable {
            do {
                try await store.append([entry.item])
                try? bus.ack(entry.message)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] != nil {
                await setAside(entry.message, reason: "refused by PostgreSQL: \(error.serverInfo?[.message] ?? "?")")
            } catch {
                try? bus.nak(entry.message, delay: .seconds(1))
            }
        }
    }

    /// Keeps a message that cannot be a record in the quarantine table and acknowledges it; if even
    /// that fails it is delivered again later.
    private func setAside(_ message: JetStreamMessage, reason: String) async {
        do {
            try await store.quarantine(streamSequence: message.streamSequence, payload: message.message.payload, reason: reason)
            try? bus.ack(message)
            logger.error("an audit stream message was set aside", metadata: ["stream.sequence": "\(message.streamSequence)", "reason": "\(reason)"])
        } catch {
            try? bus.nak(message, delay: .seconds(5))
        }
    }
}
