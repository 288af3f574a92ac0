import ServiceContextModule
import Synchronization
import Tracing

/// Warden's own entry points to its tracer, called directly rather than through
/// swift-distributed-tracing's global `withSpan` and `InstrumentationSystem`, which cast the tracer
/// to a protocol and box every span for every span and header written (measured: about 1% of a
/// traced gateway's CPU). Reading the tracer here takes an uncontended lock and copies a struct. With tracing off (no `WARDEN_OTLP_ENDPOINT`) there is no tracer:
/// no span is made, no trace context read or written.
package enum WardenTrace {
    private static let installed = Mutex<WardenTracer?>(nil)

    /// Set at start-up (`WardenTracing.bootstrap`), before requests are served.
    static func install(_ tracer: WardenTracer?) {
        installed.withLock { $0 = tracer }
    }

    package static var tracer: WardenTracer? { installed.withLock { $0 } }

    /// `body` in a new span, a child of `context`'s (by default the task's); `body` gets nil when
    /// tracing is off. The span ends when `body` returns.
    package static func withSpan<T>(
        _ name: @autoclosure () -> String, context: ServiceContext? = nil, ofKind kind: SpanKind, _ body: (WardenSpan?) async -> T
    ) async -> T {
        guard let tracer else { return await body(nil) }
        let span = tracer.start(name(), context: context ?? ServiceContext.current ?? .topLevel, ofKind: kind)
        defer { span.end() }
        return await ServiceContext.withValue(span.context) { await body(span) }
    }

    /// Continues a caller's trace: its `traceparent` (and `tracestate`) into `context`, when tracing
    /// is on and the value is well-formed.
    package static func extract(traceparent: String?, tracestate: String?, into context: inout ServiceContext) {
        guard tracer != nil, let traceparent, let parent = SpanContext(traceparent: traceparent, traceState: tracestate) else { return }
        context.spanContext = parent
    }

    /// The task's trace context as `traceparent` and `tracestate` values for the next hop; nil when
    /// nothing is traced.
    package static func current() -> (traceparent: String, tracestate: String?)? {
        guard tracer != nil, let spanContext = ServiceContext.current?.spanContext else { return nil }
        return (spanContext.traceparent, spanContext.traceState)
    }
}
