import NIOHTTP1
import ServiceContextModule
import Tracing
import WardenServiceKit

extension HTTPHeaders {
    /// The current span's W3C trace context (`traceparent`, `tracestate`), so that an HTTP MCP
    /// server that traces joins the call's trace; nothing when nothing is traced.
    mutating func addTraceContext() {
        guard let trace = WardenTrace.current() else { return }
        replaceOrAdd(name: "traceparent", value: trace.traceparent)
        if let state = trace.tracestate { replaceOrAdd(name: "tracestate", value: state) }
    }
}
