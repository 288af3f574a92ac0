import Tracing

/// The span of the HTTP request a task serves (`ObservabilityMiddleware`): what a handler learns
/// (the MCP method, server, tool, outcome) goes on it rather than on spans of its own, because
/// spans are what tracing costs per call; only work worth seeing apart (a pipeline stage that asks
/// another service, a NATS request, the downstream call) gets a span.
package enum RequestSpan {
    @TaskLocal package static var current: WardenSpan?
}
