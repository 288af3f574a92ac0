import AsyncHTTPClient
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Sends the buffered spans to an OTLP/HTTP receiver (`/v1/traces`, protobuf) every
/// `interval` (`OTEL_BSP_SCHEDULE_DELAY` milliseconds, default 1000), in requests of at most the
/// buffer's `batchSize` spans, and once more at shutdown. A receiver that fails or is slow loses those spans
/// (counted, and logged at most once a minute); requests never wait for it.
package struct OTLPSpanExporter: Service {
    let buffer: SpanBuffer
    let url: String
    let resource: OTLPEncoder.Resource
    let interval: Duration
    let logger: Logger

    package init(buffer: SpanBuffer, url: String, resource: OTLPEncoder.Resource, interval: Duration, logger: Logger) {
        self.buffer = buffer
        self.url = url
        self.resource = resource
        self.interval = interval
        self.logger = logger
    }

    package func run() async throws {
        var lastWarning: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            await export(&lastWarning)
        }
        await export(&lastWarning)
    }

    private func export(_ lastWarning: inout ContinuousClock.Instant?) async {
        let spans = buffer.drain()
        for batch in spans.batches {
            let outcome: String
            do {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/x-protobuf")
                request.body = .bytes(ByteBuffer(bytes: OTLPEncoder.request(resource: resource, entries: batch.entries)))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                _ = try? await response.body.collect(upTo: 1 << 16)
                outcome = (200..<300).contains(response.status.code) ? "exported" : "refused"
                if outcome == "refused" { warn(&lastWarning, "the OTLP receiver answered HTTP \(response.status.code)") }
            } catch {
                outcome = "failed"
                warn(&lastWarning, "cannot reach the OTLP receiver: \(error)")
            }
            Counter(label: "warden_trace_spans_exported_total", dimensions: [("outcome", outcome)]).increment(by: batch.spans)
        }
    }

    private func warn(_ last: inout ContinuousClock.Instant?, _ message: String) {
        let now = ContinuousClock.now
        if let previous = last, now - previous < .seconds(60) { return }
        last = now
        logger.warning("tracing: \(message); spans are dropped until it answers")
    }
}
