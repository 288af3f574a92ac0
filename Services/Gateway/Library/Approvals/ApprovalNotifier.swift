import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Tells approvers where they already are: each change the approvals service puts on the notices
/// stream becomes a Slack message (new requests with Approve and Reject buttons) and a signed
/// webhook call, for the orgs that set them up (`ApprovalChannelStore`).
///
/// The gateway replicas share one durable consumer (one delivery group): a notice is handled by one
/// replica, acknowledged once delivered. A change is first split into one message per channel (so
/// a failing webhook never posts to Slack twice); each is retried with growing delays and, after
/// `attempts`, dead-lettered: kept in `approval_notice_failures` and logged as an error.
package struct ApprovalNotifier: Service {
    let bus: NATSConnection
    let channels: ApprovalChannelStore
    let database: DatabasePool
    let logger: Logger
    /// Deliveries of one notice before it is dead-lettered.
    var attempts = 6

    /// Posts where org admins point it, never inside the network.
    let poster: WebhookPoster

    package init(
        bus: NATSConnection, channels: ApprovalChannelStore, database: DatabasePool, attempts: Int = 6, allowLocal: Bool = false, logger: Logger
    ) {
        self.poster = WebhookPoster(allowLocal: allowLocal)
        self.bus = bus
        self.channels = channels
        self.database = database
        self.attempts = attempts
        self.logger = logger
    }

    static let streamName = "WARDEN_APPROVAL_NOTICES"

    static var streamSpec: JetStreamStreamSpec {
        JetStreamStreamSpec(
            name: streamName, subjects: [ApprovalEndpoints.noticesSubject, ApprovalEndpoints.noticesSubject + ".>"], maxAge: .seconds(86400))
    }

    var consumerSpec: JetStreamConsumerSpec {
        var spec = JetStreamConsumerSpec(stream: Self.streamName, durableName: "approval-notifier", deliverGroup: "gateway-notifier")
        spec.ackWait = .seconds(60)
        spec.maxDeliver = attempts + 1
        return spec
    }

    /// The channels a change is split into.
    enum Channel: String, CaseIterable { case slack, webhook }

    package func run() async throws {
        var subscription: NATSSubscription?
        // Cancelled (the process is stopping after another service failed), the sleep below returns
        // at once: the loop must end then too, or it spins.
        while subscription == nil, !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await bus.ensureStream(Self.streamSpec)
                subscription = try await bus.durableSubscription(consumerSpec)
            } catch {
                logger.warning("cannot set up the approval notices stream; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(2))
            }
        }
        guard let subscription else { return }
        await withGracefulShutdownHandler {
            // Up to `concurrency` notices at once: one slow endpoint does not hold up the others.
            await withDiscardingTaskGroup { group in
                var inFlight = 0
                let (done, finished) = AsyncStream.makeStream(of: Void.self)
                var doneIterator = done.makeAsyncIterator()
                for await message in subscription {
                    guard let delivered = JetStreamMessage(message) else { continue }
                    if inFlight >= Self.concurrency {
                        _ = await doneIterator.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    group.addTask {
                        await handle(delivered)
                        finished.yield()
                    }
                }
                finished.finish()
            }
        } onGracefulShutdown: {
            subscription.unsubscribe()
        }
    }

    static let concurrency = 16

    func handle(_ delivered: JetStreamMessage) async {
        guard let change = try? EnvelopeCoding.decoder().decode(ApprovalChange.self, from: delivered.message.payload) else {
            logger.warning("dropping an unreadable approval notice")
            try? bus.ack(delivered)
            return
        }
        let subject = delivered.message.subject
        if subject == ApprovalEndpoints.noticesSubject {
            await split(change, delivered)
            return
        }
        guard let channel = Channel(rawValue: String(subject.dropFirst(ApprovalEndpoints.noticesSubject.count + 1))) else {
            try? bus.ack(delivered)
            return
        }
        let failure: String?
        do {
            guard let settings = try await channels.channels(org: change.request.org) else {
                try? bus.ack(delivered)
                return
            }
            failure = try await deliver(change, to: channel, settings)
        } catch {
            failure = "the org's channels cannot be read: \(error)"
        }
        guard let failure else {
            try? bus.ack(delivered)
            return
        }
        if delivered.deliveryCount >= UInt64(attempts) {
            await deadLetter(change, channel: channel.rawValue, attempts: Int(delivered.deliveryCount), error: failure)
            try? bus.ack(delivered)
        } else {
            // 1, 2, 4, 8 … seconds, at most a minute.
            let delay = Duration.seconds(min(60, 1 << min(Int(delivered.deliveryCount) - 1, 6)))
            try? bus.nak(delivered, delay: delay)
        }
    }

    /// One message per channel the org set up, each delivered (and retried) on its own.
    func split(_ change: ApprovalChange, _ delivered: JetStreamMessage) async {
        do {
            if let settings = try await channels.channels(org: change.request.org) {
                for channel in Channel.allCases where settings.has(channel) {
                    _ = try await bus.jetStreamPublish(
                        ApprovalEndpoints.noticesSubject + "." + channel.rawValue, payload: delivered.message.payload,
                        messageID: change.id + ":" + channel.rawValue)
                }
            }
            try bus.ack(delivered)
        } catch {
            // The org's channels cannot be read (the vault) or the stream took nothing: again
            // later, and given up on the record after the last attempt, like a delivery.
            if delivered.deliveryCount >= UInt64(attempts) {
                await deadLetter(change, channel: "all", attempts: Int(delivered.deliveryCount), error: "cannot be split: \(type(of: error))")
                try? bus.ack(delivered)
            } else {
                logger.warning("an approval notice could not be split; it comes again", metadata: ["error": "\(error)"])
                try? bus.nak(delivered, delay: .seconds(min(60, 1 << min(Int(delivered.deliveryCount), 6))))
            }
        }
    }

    /// Posts the change; nil when delivered, else why not.
    func deliver(_ change: ApprovalChange, to channel: Channel, _ settings: ApprovalChannels) async throws -> String? {
        let outcome: WebhookPoster.Outcome
        switch channel {
        case .slack:
            guard let url = settings.slackWebhookURL else { return nil }
            outcome = await poster.post(url, headers: [], body: SlackMessage.blocks(for: change))
        case .webhook:
            guard let url = settings.webhookURL, let secret = settings.webhookSecret else { return nil }
            let body = try EnvelopeCoding.encoder().encode(change)
            let headers = WebhookSignature.headers(secret: secret, body: body, event: "approval.\(change.event)", delivery: change.id)
            outcome = await poster.post(url, headers: headers, body: body)
        }
        return outcome == .delivered ? nil : "\(channel.rawValue): \(outcome)"
    }

    func deadLetter(_ change: ApprovalChange, channel: String, attempts: Int, error: String) async {
        logger.error(
            "an approval notice was not delivered and is dead-lettered",
            metadata: ["approval.id": "\(change.request.id)", "channel": "\(channel)", "attempts": "\(attempts)", "error": "\(error)"])
        do {
            try await database.query(
                """
                INSERT INTO approval_notice_failures (org, channel, change_id, event, request_id, attempts, error)
                VALUES (\(change.request.org), \(channel), \(change.id), \(change.event), \(change.request.id), \(attempts), \(error))
                """, logger: logger)
        } catch {
            logger.error("a dead-lettered approval notice could not be stored", metadata: ["error": "\(error)"])
        }
    }
}

extension ApprovalChannels {
    func has(_ channel: ApprovalNotifier.Channel) -> Bool {
        switch channel {
        case .slack: slackWebhookURL != nil
        case .webhook: webhookURL != nil && webhookSecret != nil
        }
    }
}
