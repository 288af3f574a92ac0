import Foundation
import Logging
import Metrics
import ServiceContextModule
import Tracing
import WardenContracts
import WardenNATS

/// Typed request/reply to another service: envelopes in, envelopes out, and every transport failure
/// mapped to a `ServiceError` the caller can act on (fail closed).
public struct ServiceClient: Sendable {
    public let bus: any MessageBus
    /// `<service>/<instance>` of the caller, sent in the `Warden-Caller` header.
    public let caller: String
    public let defaultTimeout: Duration

    public init(bus: any MessageBus, caller: String, defaultTimeout: Duration = .seconds(5)) {
        self.bus = bus
        self.caller = caller
        self.defaultTimeout = defaultTimeout
    }

    public func call<Request, Response>(
        _ endpoint: ServiceEndpoint<Request, Response>,
        _ body: Request,
        timeout: Duration? = nil,
        requestID: String? = nil
    ) async throws(ServiceError) -> Response {
        let started = ContinuousClock.now
        let result = await WardenTrace.withSpan(endpoint.subject, ofKind: .client) { span in
            span?.annotate { fields in
                fields["messaging.system"] = "nats"
                fields["messaging.destination.name"] = endpoint.subject
            }
            let result = await attempt(endpoint, body, timeout: timeout, requestID: requestID)
            if case .failure(let error) = result {
                span?.annotate { $0["warden.error.code"] = error.code.rawValue }
                span?.setStatus(SpanStatus(code: .error))
            }
            return result
        }
        let outcome =
            switch result {
            case .success: "ok"
            case .failure(let error): error.code.rawValue
            }
        Counter(label: "warden_nats_requests_total", dimensions: [("subject", endpoint.subject), ("outcome", outcome)]).increment()
        Timer(label: "warden_nats_request_duration_seconds", dimensions: [("subject", endpoint.subject)]).record(
            duration: ContinuousClock.now - started)
        return try result.get()
    }

    /// One request: the task's request id and trace context go in its headers.
    private func attempt<Request, Response>(
        _ endpoint: ServiceEndpoint<Request, Response>,
        _ body: Request,
        timeout: Duration?,
        requestID: String?
    ) async -> Result<Response, ServiceError> {
        do throws(ServiceError) {
            return .success(try await exchange(endpoint, body, timeout: timeout, requestID: requestID))
        } catch {
            return .failure(error)
        }
    }

    private func exchange<Request, Response>(
        _ endpoint: ServiceEndpoint<Request, Response>,
        _ body: Request,
        timeout: Duration?,
        requestID: String?
    ) async throws(ServiceError) -> Response {
        let payload: Data
        do {
            payload = try EnvelopeCoding.request(body)
        } catch {
            throw ServiceError(.badRequest, "could not encode request for \(endpoint.subject)")
        }
        var headers: NATSHeaders = [NATSHeaderName.requestID: requestID ?? RequestID.current ?? RequestID.make(), NATSHeaderName.caller: caller]
        if let trace = WardenTrace.current() {
            headers["traceparent"] = trace.traceparent
            if let state = trace.tracestate { headers["tracestate"] = state }
        }
        let reply: NATSMessage
        do {
            reply = try await bus.request(endpoint.subject, payload: payload, headers: headers, timeout: timeout ?? defaultTimeout)
        } catch let error as NATSError {
            throw Self.map(error, endpoint.service)
        } catch is CancellationError {
            throw ServiceError(.unavailable, "request to the \(endpoint.service.rawValue) service was cancelled")
        } catch {
            throw ServiceError(.internal, "request to the \(endpoint.service.rawValue) service failed")
        }
        let envelope: ReplyEnvelope<Response>
        do {
            envelope = try EnvelopeCoding.decodeReply(Response.self, from: reply.payload)
        } catch {
            throw ServiceError(.internal, "the \(endpoint.service.rawValue) service sent a reply this version cannot read")
        }
        return try envelope.get()
    }

    static func map(_ error: NATSError, _ service: WardenServiceName) -> ServiceError {
        switch error.code {
        case .noResponders: ServiceError(.unavailable, "the \(service.rawValue) service is not running")
        case .timeout: ServiceError(.timeout, "the \(service.rawValue) service did not answer in time")
        case .notConnected, .connectionClosed: ServiceError(.unavailable, "the message bus (NATS) is not reachable")
        case .payloadTooLarge: ServiceError(.badRequest, "request to the \(service.rawValue) service is too large")
        default: ServiceError(.internal, "request to the \(service.rawValue) service failed")
        }
    }
}
