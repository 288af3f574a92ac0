import Synchronization
import Tracing

/// Warden's own entry points to its tracer, called directly rather than through
/// swift-distributed-tracing's global `withSpan` and `InstrumentationSystem`, which cast the tracer
/// to a protocol and box every span for every span and header written (measured: about 1% of a
/// traced gateway's CPU). Reading the tracer here takes an uncontended lock and copies a struct. With tracing off (no `WARDEN_OTLP_ENDPOINT`) there is no tracer:
/// no span is made, no trace context read or written.
///
/// The task's current span is a task-local of its own (`currentSpan`), not a `ServiceContext` value:
/// setting one in a `ServiceContext` copies its dictionary, hashes the key and boxes the context,
/// and reading it back casts from `Any` (measured: about 10,000 instructions a traced call).
package enum WardenTrace {
    private static let installed = Mutex<WardenTracer?>(nil)

    /// Set at start-up (`WardenTracing.bootstrap`), before requests are served.
    static func install(_ tracer: WardenTracer?) {
        installed.withLock { $0 = tracer }
    }

    package static var tracer: WardenTracer? { installed.withLock { $0 } }

    /// The innermost span this task runs in: the parent of the next, and what goes on to the next hop.
    @TaskLocal package static var currentSpan: WardenSpan?

    /// `body` in a new span, a child of `parent` (trace context that came from elsewhere) or else of
    /// the task's current span; `body` gets nil when tracing is off. The span ends when `body` returns.
    package static func withSpan<T>(
        _ name: @autoclosure () -> String, parent: SpanContext? = nil, ofKind kind: SpanKind, tracer: WardenTracer? = tracer,
        _ body: (WardenSpan?) async -> T
    ) async -> T {
        guard let tracer else { return await body(nil) }
        let span = tracer.start(name(), parent: parent ?? currentSpan?.spanContext, ofKind: kind)
        defer { span.end() }
        return await $currentSpan.withValue(span) { await body(span) }
    }

    /// A caller's trace context (its `traceparent` and `tracestate`), when tracing is on and the
    /// value is well-formed. `decided`: whether its sampled flag was decided by Warden (another
    /// service, over NATS), and is followed; an outside client's is not (its trace id is kept).
    package static func parent(traceparent: String?, tracestate: String?, decided: Bool, tracer: WardenTracer? = tracer) -> SpanContext? {
        guard tracer != nil, let traceparent, var parent = SpanContext(traceparent: traceparent, traceState: tracestate) else { return nil }
        parent.decided = decided
        return parent
    }

    /// The task's trace context as `traceparent` and `tracestate` values for the next hop; nil when
    /// nothing is traced.
    package static func current() -> (traceparent: String, tracestate: String?)? {
        guard let spanContext = currentSpan?.spanContext else { return nil }
        return (spanContext.traceparent, spanContext.traceState)
    }
}
