import NIOHTTP1
import ServiceContextModule
import Tracing
import WardenServiceKit

extension HTTPHeaders {
    /// The current span's W3C trace context (`traceparent`, `tracestate`), so that an HTTP MCP
    /// server that traces joins the call's trace; nothing when nothing is traced.
    mutating func addTraceContext() {
        guard let context = ServiceContext.current else { return }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        for (name, value) in carrier { replaceOrAdd(name: name, value: value) }
    }
}
