import Tracing

/// Warden's tracer (swift-distributed-tracing's `Tracer`): W3C trace context in and out, sampling by
/// trace id, spans handed to an `SpanBuffer` that `OTLPSpanExporter` drains. Chosen over swift-otel's
/// tracer, which wakes a task at every span's start and end: measured, that cost a proxied call
/// more than a third of its gateway CPU (BENCHMARKS.md, "Observability").
package struct WardenTracer: Tracer {
    package typealias Span = WardenSpan

    let buffer: SpanBuffer
    /// A new trace is recorded when a random draw falls below this.
    let threshold: UInt64

    package init(buffer: SpanBuffer, sampleRatio: Double) {
        self.buffer = buffer
        self.threshold =
            sampleRatio >= 1 ? .max : sampleRatio <= 0 ? 0 : UInt64((sampleRatio * Double(UInt64.max)).rounded(.down))
    }

    /// A new decision: at random, so that neither an outside caller's flag nor its choice of trace
    /// id decides whether its requests are recorded. Once decided, the decision travels with the
    /// trace (over NATS, between Warden's services) and is followed.
    func decides() -> Bool {
        threshold == .max || (threshold > 0 && UInt64.random(in: 0...UInt64.max) < threshold)
    }

    /// The `Tracer` protocol's entry: the parent is `context`'s span, and the span's `context` is
    /// `context` with the new span in it.
    package func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> WardenSpan {
        let context = context()
        return start(operationName, parent: context.spanContext, ofKind: kind, at: instant().nanosecondsSinceEpoch, base: context)
    }

    /// A span starting now (or at `nanoseconds` since 1970), a child of `parent` when there is one.
    package func start(
        _ operationName: String, parent: SpanContext?, ofKind kind: SpanKind, at nanoseconds: UInt64? = nil, base: ServiceContext = .topLevel
    ) -> WardenSpan {
        let traceID = parent?.traceID ?? .random()
        let sampled = parent.flatMap { $0.decided ? $0.sampled : nil } ?? decides()
        let spanContext = SpanContext(traceID: traceID, spanID: .random(), sampled: sampled, traceState: parent?.traceState)
        return WardenSpan(
            operationName: operationName, base: base, spanContext: spanContext, parentSpanID: parent?.spanID, kind: kind,
            startNanoseconds: nanoseconds ?? DefaultTracerClock.now.nanosecondsSinceEpoch, sink: sampled ? buffer : nil)
    }

    package func forceFlush() {}

    package func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let text = extractor.extract(key: "traceparent", from: carrier),
            let parent = SpanContext(traceparent: text, traceState: extractor.extract(key: "tracestate", from: carrier))
        else { return }
        context.spanContext = parent
    }

    package func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let spanContext = context.spanContext else { return }
        injector.inject(spanContext.traceparent, forKey: "traceparent", into: &carrier)
        if let state = spanContext.traceState { injector.inject(state, forKey: "tracestate", into: &carrier) }
    }
}
