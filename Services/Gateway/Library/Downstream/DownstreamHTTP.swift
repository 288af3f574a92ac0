import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import WardenMCP

/// The HTTP clients for downstream servers: for the life of the process, like `HTTPClient.shared`,
/// but they never follow redirects (per-server headers may hold credentials that must not travel to
/// another host), give up connecting after 3 s (a down server fails its calls quickly, and its
/// supervisor marks it unavailable after the first) and make no spans of their own.
package enum DownstreamHTTP {
    /// Requests: an answer that stalls for 30 s fails the call.
    static let client = make(readTimeout: .seconds(30))
    /// Long-lived event streams (legacy SSE), which may stay silent for long.
    static let streamingClient = make(readTimeout: nil)
    private static let clients = Mutex<[Duration: HTTPClient]>([.seconds(30): client])

    /// The client for requests whose answers may stay silent for up to `readTimeout` (a server's
    /// call timeout: a tool that works for minutes before it answers must not fail at a fixed
    /// 30 s), one per distinct value.
    static func client(readTimeout: Duration) -> HTTPClient {
        clients.withLock { clients in
            if let client = clients[readTimeout] { return client }
            let client = make(readTimeout: TimeAmount(readTimeout))
            clients[readTimeout] = client
            return client
        }
    }

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
