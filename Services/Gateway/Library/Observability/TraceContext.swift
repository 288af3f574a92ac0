import ServiceContextModule
import Tracing
import WardenMCP
import WardenServiceKit

/// W3C trace context in an MCP message's `_meta` (`traceparent`, `tracestate`): how a client that
/// cannot set headers names its trace, and how a stdio server learns the gateway's.
enum TraceContext {
    /// `params` with the current span's context in `_meta`; unchanged when nothing is traced.
    static func carried(in params: JSONValue) -> JSONValue {
        guard let trace = WardenTrace.current() else { return params }
        var meta = params["_meta"] ?? .object([])
        guard case .object = meta else { return params }
        meta = meta.setting("traceparent", to: .string(trace.traceparent))
        if let state = trace.tracestate { meta = meta.setting("tracestate", to: .string(state)) }
        return params.setting("_meta", to: meta)
    }

    /// The client's trace context from a request's `_meta`, when well-formed.
    static func parent(in params: JSONValue?) -> [String: String]? {
        guard let parent = params?["_meta"]?["traceparent"]?.stringValue, isWellFormed(parent) else { return nil }
        var carrier = ["traceparent": parent]
        if let state = params?["_meta"]?["tracestate"]?.stringValue, state.utf8.count <= 512 { carrier["tracestate"] = state }
        return carrier
    }

    /// As W3C trace context reads it (`00-<32 hex>-<16 hex>-<2 hex>`, lowercase, no id all zeros).
    static func isWellFormed(_ value: String) -> Bool {
        SpanContext(traceparent: value) != nil
    }
}
