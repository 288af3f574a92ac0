import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WardenMCP
import WardenServiceKit

/// Stage 1: who is calling. Browsers' Origin is checked first (a page on another site must not drive
/// the gateway: DNS rebinding), then the bearer token or a trusted proxy's client certificate. The
/// client's credential is never forwarded downstream.
struct AuthenticateStage: Sendable {
    let authenticator: GatewayAuthenticator?
    /// Browser origins allowed besides the gateway's own public origin.
    let allowedOrigins: Set<String>

    /// `publicURL`'s origin is always allowed: pages the gateway serves itself call `/mcp` from it.
    init(authenticator: GatewayAuthenticator?, allowedOrigins: Set<String>, publicURL: String?) {
        self.authenticator = authenticator
        var origins = allowedOrigins
        if let own = publicURL.flatMap(Self.origin(of:)) { origins.insert(own) }
        self.allowedOrigins = origins
    }

    /// The agent, or nil when the gateway allows anonymous requests.
    func run(_ request: Request, peer: SocketAddress?) async throws(MCPFailure) -> AuthenticatedAgent? {
        if let origin = request.headers.value(.origin), !allowedOrigins.contains(origin) {
            throw MCPFailure(.forbidden, .invalidRequest("Origin \(origin) is not allowed"))
        }
        guard let authenticator else { return nil }
        switch await authenticator.authenticate(request, peer: peer) {
        case .anonymous: return nil
        case .agent(let agent): return agent
        case .refused(let response): throw .refused(response)
        }
    }

    /// `scheme://host[:port]` of a URL, as browsers send it in Origin.
    static func origin(of url: String) -> String? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty else { return nil }
        return url[..<schemeEnd.upperBound].lowercased() + authority.lowercased()
    }
}
