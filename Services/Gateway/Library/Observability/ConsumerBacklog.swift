import Logging
import Metrics
import WardenNATS

/// The backlog of the durable JetStream consumers the gateway creates (the audit store's, the
/// approval notifier's), read from NATS when the gateway is scraped: acknowledgements pending that
/// keep growing mean the consumer's replicas are down or failing. Every gateway replica reports the
/// same numbers (they are the server's); a consumer NATS cannot describe leaves the exposition.
struct ConsumerBacklog: Sendable {
    let bus: NATSConnection
    let consumers: [JetStreamConsumerSpec]
    let logger: Logger

    func record() async {
        for spec in consumers {
            let dimensions = [("stream", spec.stream), ("consumer", spec.durableName)]
            let gauges = [
                Gauge(label: "warden_jetstream_consumer_ack_pending", dimensions: dimensions),
                Gauge(label: "warden_jetstream_consumer_pending", dimensions: dimensions),
                Gauge(label: "warden_jetstream_consumer_redelivered", dimensions: dimensions),
            ]
            let state: JetStreamConsumerState
            do {
                state = try await bus.consumerState(stream: spec.stream, consumer: spec.durableName, timeout: .seconds(1))
            } catch {
                // Absent rather than stale (`warden_nats_connected` says when NATS is away).
                logger.debug("cannot read a consumer's backlog", metadata: ["consumer": "\(spec.durableName)", "error": "\(error)"])
                gauges.forEach { $0.destroy() }
                continue
            }
            gauges[0].record(state.ackPending)
            gauges[1].record(state.pending)
            gauges[2].record(state.redelivered)
        }
    }
}
