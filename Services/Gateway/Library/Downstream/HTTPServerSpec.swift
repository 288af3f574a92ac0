import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import WardenMCP

/// How to reach one remote MCP server.
package struct HTTPServerSpec: Sendable, Codable, Equatable {
    package enum Transport: String, Sendable, Codable {
        /// Streamable HTTP (2025-03-26 and later): POST answered with JSON or an SSE stream.
        case streamableHTTP = "streamable-http"
        /// The legacy HTTP+SSE transport (2024-11-05): a GET event stream plus a POST endpoint it names.
        case sse
    }

    package var url: String
    package var transport: Transport
    /// Sent with every request (for example a static `Authorization`). Values are secrets: never logged.
    package var headers: [String: String]
    package var maximumMessageBytes: Int

    package init(url: String, transport: Transport = .streamableHTTP, headers: [String: String] = [:], maximumMessageBytes: Int = 4 << 20) {
        self.url = url
        self.transport = transport
        self.headers = headers
        self.maximumMessageBytes = maximumMessageBytes
    }

    /// Where the server is — scheme, host and port — for errors an agent reads and for logs: a path
    /// can hold a credential too (some services put their token there), and the configuration is
    /// the admin's, not the agent's.
    package var origin: String {
        // Read by hand: a URL whose query holds a secret reference need not be one Foundation parses.
        guard let separator = url.range(of: "://") else { return "(invalid URL)" }
        let scheme = url[..<separator.lowerBound]
        var authority = url[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard let first = scheme.first, first.isLetter, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }), !authority.isEmpty
        else { return "(invalid URL)" }
        return "\(scheme.lowercased())://\(authority)"
    }

    /// The URL without credentials, query or fragment: what admins see of a server's configuration,
    /// and the base an SSE server's relative endpoint is resolved against.
    package var displayURL: String {
        guard var components = URLComponents(string: url) else { return "(invalid URL)" }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        return components.string ?? "(invalid URL)"
    }
}
