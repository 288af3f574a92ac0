import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Stores what every service publishes to the audit stream: a durable JetStream consumer shared by
/// every audit replica (one delivery group), events written in batches (about `batchEvents`, one
/// transaction) and acknowledged only once committed. A message carries one event or several, one
/// JSON object a line (the gateway batches its calls' events); each line is stored as received. A replica that dies before committing leaves
/// its events unacknowledged: JetStream delivers them again, and the store skips ids it has.
/// Nothing is taken from the stream before this instance's schema is ready (a replica that starts
/// while another migrates would otherwise find no tables), and a message is set aside only when
/// PostgreSQL refuses its content, or keeps refusing it (`setsAside`); any other failure leaves it
/// to be delivered again.
package final class AuditIngest: Service, Sendable {
    /// Events written in one transaction (whole messages: a batch may run over by one message).
    static let batchEvents = 2_000

    let bus: NATSConnection
    let store: AuditStore
    let startup: StartupGate
    let logger: Logger
    private let pending = Mutex<[JetStreamMessage]>([])

    package init(bus: NATSConnection, store: AuditStore, startup: StartupGate, logger: Logger) {
        self.bus = bus
        self.store = store
        self.startup = startup
        self.logger = logger
    }

    package func run() async throws {
        // A stop asked for while the schema is migrated ends the wait (nothing was taken yet).
        try? await cancelWhenGracefulShutdown { try await self.startup.wait() }
        guard startup.isOpen, !Task.isShuttingDownGracefully else { return }
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
                var taken = 0
                var events = 0
                while taken < pending.count, events < Self.batchEvents {
                    events += Self.lineRanges(in: pending[taken].message.payload).count
                    taken += 1
                }
                defer { pending.removeFirst(taken) }
                return Array(pending.prefix(taken))
            }
            guard !batch.isEmpty else { return }
            await write(batch)
        }
    }

    private func write(_ batch: [JetStreamMessage]) async {
        var readable: [(message: JetStreamMessage, items: [AuditStore.Incoming], unreadable: Int)] = []
        for message in batch {
            let (items, unreadable) = Self.events(in: message.message.payload)
            guard !items.isEmpty else {
                // Not audit events this version reads: kept aside as received, not lost and not retried forever.
                await setAside(message, reason: "unreadable as audit events")
                continue
            }
            readable.append((message, items, unreadable))
        }
        do {
            let items = readable.flatMap(\.items)
            let stored = try await store.append(items)
            Counter(label: "warden_audit_events_written_total").increment(by: stored.count)
            if let oldest = items.lazy.map(\.event.time).min() {
                Gauge(label: "warden_audit_ingest_lag_seconds").record(Date().timeIntervalSince(oldest))
            }
            for entry in readable {
                // The events it could read are stored; the message is also kept as received for the rest.
                if entry.unreadable > 0 {
                    await setAside(entry.message, reason: "\(entry.unreadable) of its lines are unreadable as audit events")
                } else {
                    try? bus.ack(entry.message)
                }
            }
            announce(stored)
            logger.debug("audit events stored", metadata: ["audit.messages": "\(readable.count)", "audit.stored": "\(stored.count)"])
            return
        } catch {
            logger.error("a batch of audit events could not be stored; storing them message by message", metadata: ["error": "\(error)"])
        }
        // One message PostgreSQL refuses must not hold back every other: each on its own, and what is
        // still refused is set aside; if the database itself is away, everything is delivered again.
        for entry in readable {
            do {
                announce(try await store.append(entry.items))
                if entry.unreadable > 0 {
                    await setAside(entry.message, reason: "\(entry.unreadable) of its lines are unreadable as audit events")
                } else {
                    try? bus.ack(entry.message)
                }
            } catch let error as PSQLError
                where Self.setsAside(sqlState: error.serverInfo?[.sqlState], deliveries: entry.message.deliveryCount)
            {
                await setAside(entry.message, reason: "refused by PostgreSQL: \(error.serverInfo?[.message] ?? "?")")
            } catch {
                try? bus.nak(entry.message, delay: .seconds(1))
            }
        }
    }

    /// Deliveries after which a message PostgreSQL refuses (for a reason not its content: a
    /// trigger, a timeout, an internal error) is set aside rather than retried until the stream
    /// expires it. Deliveries, not refusals: those during an outage count too.
    static let deliveriesBeforeSetAside: UInt64 = 20

    /// Whether a message PostgreSQL refused is set aside: at once when it refused what the message
    /// holds (SQLSTATE class 22, data exception; 23, integrity constraint violation; 54, program
    /// limit exceeded), since storing it again fails again; after `deliveriesBeforeSetAside`
    /// deliveries for any other refusal, except those that say the database is away, overloaded or
    /// not ready (08 connection, 53 resources, 57P shutdown, 40 deadlock or serialization, 42P01 a
    /// table a replica is still migrating), which pass however long they last.
    static func setsAside(sqlState: String?, deliveries: UInt64) -> Bool {
        guard let sqlState else { return false }
        if sqlState.hasPrefix("22") || sqlState.hasPrefix("23") || sqlState.hasPrefix("54") { return true }
        let passing = ["08", "53", "57P", "40"].contains { sqlState.hasPrefix($0) } || sqlState == "42P01"
        return !passing && deliveries >= deliveriesBeforeSetAside
    }

    /// Change data capture for SIEMs: each stored record, as chained, on its org's subject
    /// (`AuditStream.storedSubject`), after it is committed. Core NATS: a subscriber that is away
    /// misses records, and catches up from the record itself (`GET /admin/v1/audit/records`).
    private func announce(_ stored: [(chain: String, record: AuditChainedRecord)]) {
        // Records come chain by chain: the subject is worked out once a chain.
        var current: (chain: String, subject: String?)?
        for (chain, record) in stored {
            if current?.chain != chain { current = (chain, AuditStream.storedSubject(org: chain.isEmpty ? nil : chain)) }
            guard let subject = current?.subject else { continue }
            try? bus.publish(subject, payload: AuditJSON.data(record))
        }
    }

    /// The events of one message, each with its line exactly as received, and how many lines are
    /// not one (one bad line does not hold back the others).
    static func events(in payload: Data) -> (items: [AuditStore.Incoming], unreadable: Int) {
        var items: [AuditStore.Incoming] = []
        var unreadable = 0
        for range in lineRanges(in: payload) {
            let line = payload[range]
            guard let event = try? AuditEventReader.event(from: line) else {
                unreadable += 1
                continue
            }
            items.append(AuditStore.Incoming(event: event, body: String(decoding: line, as: UTF8.self)))
        }
        return (items, unreadable)
    }

    /// Where the payload's non-empty lines are (a byte scan: `Data.split` cost as much as decoding).
    static func lineRanges(in payload: Data) -> [Range<Int>] {
        payload.withUnsafeBytes { raw -> [Range<Int>] in
            var ranges: [Range<Int>] = []
            var start = 0
            for index in 0...raw.count where index == raw.count || raw[index] == 0x0A {
                if index > start { ranges.append((payload.startIndex + start)..<(payload.startIndex + index)) }
                start = index + 1
            }
            return ranges
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
