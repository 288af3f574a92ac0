import Hummingbird
import NIOCore

/// The request context of every Warden HTTP route: Hummingbird's basic context plus the peer's
/// address, which the gateway needs to accept client-certificate headers only from trusted proxies.
public struct WardenRequestContext: Hummingbird.RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer of the connection (the reverse proxy, when there is one); nil on test clients
    /// that run without a socket.
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
