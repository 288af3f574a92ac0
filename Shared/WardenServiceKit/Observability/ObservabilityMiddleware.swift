import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import ServiceContextModule
import Tracing

/// The first middleware of every service's router: gives the request its id (`X-Request-Id` on
/// every response, errors too), continues the client's trace (`traceparent`) or starts one, and
/// counts and times the request by route template. Only the method, the route template and the
/// status go into spans and metrics: never a path's values or a query (OAuth codes travel there),
/// and never an error's text. Probes and scrapes get an id but no span.
package struct ObservabilityMiddleware<Context: Hummingbird.RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = request.headers.value(Labels.requestIDField).flatMap { RequestID.isWellFormed($0) ? $0 : nil } ?? RequestID.make()
        let started = ContinuousClock.now
        let method = Labels.methods.contains(request.method.rawValue) ? request.method.rawValue : "_OTHER"
        var serviceContext = ServiceContext.current ?? .topLevel
        serviceContext.requestID = id
        let span: WardenSpan? =
            if let tracer = WardenTrace.tracer, !Labels.untraced.contains(request.uri.path) {
                tracer.start(
                    "HTTP \(method)",
                    parent: WardenTrace.parent(
                        traceparent: request.headers.value(.traceparent), tracestate: request.headers.value(.tracestate), decided: false,
                        tracer: tracer),
                    ofKind: .server)
            } else {
                nil
            }
        var response: Response
        do {
            response = try await ServiceContext.withValue(serviceContext) {
                guard let span else { return try await next(request, context) }
                return try await WardenTrace.$currentSpan.withValue(span) {
                    try await RequestSpan.$current.withValue(span) { try await next(request, context) }
                }
            }
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            // Rendered here, once, so that it carries the request id too; the error's text stays in logs.
            context.logger.error("request failed", metadata: ["error": "\(error)", "request.id": "\(id)"])
            response = Response(
                status: .internalServerError, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error":"internal error"}"#)))
        }
        response.headers[Labels.requestIDField] = id
        let route = context.endpointPath ?? "unmatched"
        HTTPMetrics.shared.record(method: method, route: route, status: Int(response.status.code), duration: ContinuousClock.now - started)
        guard let span else { return response }
        guard span.isRecording else {
            span.end()
            return response
        }
        if !span.operationName.hasPrefix("MCP ") { span.operationName = "HTTP \(method) \(route)" }
        span.annotate { fields in
            fields["http.request.method"] = method
            fields["http.route"] = route
            fields["http.response.status_code"] = Int(response.status.code)
            fields["warden.request.id"] = id
        }
        if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
        // A streamed answer (an SSE stream, whose call runs while it is written) ends the span when
        // written, and what it logs meanwhile still names the request; an answer of known length is done.
        guard response.body.contentLength == nil else {
            span.end()
            return response
        }
        let body = response.body
        let requestContext = serviceContext
        response.body = ResponseBody { writer in
            defer { span.end() }
            try await ServiceContext.withValue(requestContext) {
                try await WardenTrace.$currentSpan.withValue(span) { try await body.write(writer) }
            }
        }
        return response
    }
}

/// Made once (a generic type has no stored statics): a set built at every request was hashed anew each time.
private enum Labels {
    static let requestIDField = HTTPField.Name(RequestID.header)!
    /// Methods a label may name; any other is `_OTHER` (OpenTelemetry's convention).
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    static let untraced: Set<String> = ["/livez", "/readyz", "/metrics"]
}
