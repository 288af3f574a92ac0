import Synchronization
import Tracing

/// A span being recorded. Setting its name, attributes or status takes a lock; ending it hands a
/// `FinishedSpan` to the exporter's buffer (an append under a lock: no task is woken per span).
package final class WardenSpan: Span {
    /// What the span was started in: the `Tracer` protocol's context; empty for Warden's own spans,
    /// whose parent is given to `WardenTracer.start` (by `WardenTrace`: the task's current span,
    /// or trace context that came from outside).
    let base: ServiceContext
    let spanContext: SpanContext
    let parentSpanID: SpanContext.SpanID?
    let kind: SpanKind
    let startNanoseconds: UInt64
    let sink: SpanBuffer?
    private struct State {
        var operationName: String
        var fields = SpanFields()
        var attributes = SpanAttributes()
        var status: SpanStatus?
        var ended = false
    }

    private let state: Mutex<State>

    init(
        operationName: String, base: ServiceContext, spanContext: SpanContext, parentSpanID: SpanContext.SpanID?, kind: SpanKind,
        startNanoseconds: UInt64, sink: SpanBuffer?
    ) {
        self.base = base
        self.spanContext = spanContext
        self.parentSpanID = parentSpanID
        self.kind = kind
        self.startNanoseconds = startNanoseconds
        self.sink = sink
        self.state = Mutex(State(operationName: operationName))
    }

    /// The `Span` protocol's context: what it was started in, with this span in it.
    package var context: ServiceContext {
        var context = base
        context.spanContext = spanContext
        return context
    }

    /// Recorded: sampled and exported. A span not sampled still carries its context onward.
    package var isRecording: Bool { sink != nil }

    package var operationName: String {
        get { state.withLock { $0.operationName } }
        set { if isRecording { state.withLock { $0.operationName = newValue } } }
    }

    /// Attributes set through the `Span` protocol; Warden's own are in `annotate`'s fields, not here.
    package var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { if isRecording { state.withLock { $0.attributes = newValue } } }
    }

    /// Sets attributes in fixed fields, where they are (`SpanFields`); nothing when not recorded.
    package func annotate(_ update: (inout SpanFields) -> Void) {
        if isRecording { state.withLock { update(&$0.fields) } }
    }

    package func setStatus(_ status: SpanStatus) {
        if isRecording { state.withLock { $0.status = status } }
    }

    /// Events are not exported: an error's text (which may hold what a request carried) stays out of traces.
    package func addEvent(_ event: SpanEvent) {}

    /// Only that an error happened, as the span's status; never the error's text.
    package func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        setStatus(SpanStatus(code: .error))
    }

    package func addLink(_ link: SpanLink) {}

    package func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        guard let sink else { return }
        let finished: FinishedSpan? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            return FinishedSpan(
                name: state.operationName, context: spanContext, parentSpanID: parentSpanID, kind: kind, start: startNanoseconds,
                end: instant().nanosecondsSinceEpoch, fields: state.fields, attributes: state.attributes, status: state.status)
        }
        if let finished { sink.append(finished) }
    }
}

/// What an ended span leaves for the exporter.
package struct FinishedSpan: Sendable {
    var name: String
    var context: SpanContext
    var parentSpanID: SpanContext.SpanID?
    var kind: SpanKind
    var start: UInt64
    var end: UInt64
    var fields: SpanFields
    /// Set through the `Span` protocol (none of Warden's code does).
    var attributes: SpanAttributes
    var status: SpanStatus?
}
