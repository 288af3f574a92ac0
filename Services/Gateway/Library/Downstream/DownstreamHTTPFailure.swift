/// Why a downstream HTTP request failed, as `DownstreamHTTPClient` tells it.
package enum DownstreamHTTPFailure: Error, Equatable, Sendable {
    /// Not an `http` or `https` URL with a host.
    case invalidURL
    /// The request could not be made: no connection (refused, TLS refused, connect timeout), or it
    /// closed before any answer.
    case unreachable
    /// No answer's head by the deadline.
    case noAnswer
    /// The answer went without a byte for the read timeout once its head had come.
    case stalled
    /// The answer's body was larger than the request allowed.
    case tooLarge
    /// The connection closed or failed partway through the answer.
    case brokeOff
    /// The request itself could not be written (a header value with a line break, say).
    case invalidRequest
    /// An event stream came faster than it was read (`DownstreamHTTPExchange.maximumPendingParts`).
    case overrun
    /// Nothing was written: the connection closed before the request could go out on it (the client
    /// then tries a new one; callers see `unreachable` if that fails too).
    case notSent
}
