import Tracing

/// The span of the HTTP request a task serves (`ObservabilityMiddleware`): what a handler learns
/// (the MCP method, server, tool, outcome, stage timings) goes on it rather than on spans of its
/// own, because spans are what tracing costs per call.
package enum RequestSpan {
    @TaskLocal package static var current: (any Span)?
}
