import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenMCP

/// The HTTP clients for legacy SSE servers (Streamable HTTP servers have `DownstreamHTTPClient`):
/// for the life of the process, like `HTTPClient.shared`, but they never follow redirects (per-server headers may hold credentials that must not travel to
/// another host), give up connecting after 3 s (a down server fails its calls quickly, and its
/// supervisor marks it unavailable after the first) and make no spans of their own.
package enum DownstreamHTTP {
    /// Requests (the legacy SSE transport's posts): an answer that stalls for 30 s fails.
    static let client = make(readTimeout: .seconds(30))
    /// Long-lived event streams (legacy SSE), which may stay silent for long.
    static let streamingClient = make(readTimeout: nil)

    package static func make(readTimeout: TimeAmount?) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(3)
        configuration.timeout.read = readTimeout
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
        // No span of its own: Warden's forward span covers the call and writes its `traceparent`.
        // Left on, async-http-client runs every request in a span of the global tracer (a no-op one,
        // since Warden never bootstraps it), setting its attributes all the same (measured: about
        // 45,000 instructions a proxied call, 6% of the gateway's).
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: .singletonMultiThreadedEventLoopGroup, configuration: configuration)
    }
}
