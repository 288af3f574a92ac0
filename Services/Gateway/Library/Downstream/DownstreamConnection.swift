import WardenMCP

/// A transport with a life a supervisor can watch: `serve()` runs until the connection is gone (the
/// process exited, the event stream closed, the session expired) and says why; `stop` ends it.
package protocol DownstreamConnection: DownstreamTransport {
    func serve() async throws -> String
    func stop(grace: Duration) async
}
