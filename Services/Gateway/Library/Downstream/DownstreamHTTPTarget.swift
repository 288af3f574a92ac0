import Foundation

/// Where a downstream HTTP request goes, read once from its URL: the connection's scheme, host and
/// port, the request line's path and query, and the `Host` header.
package struct DownstreamHTTPTarget: Sendable, Equatable, CustomStringConvertible {
    let secure: Bool
    let host: String
    let port: Int
    /// Path and query, as the request line carries them.
    let path: String
    /// The `Host` header's value.
    let authority: String

    /// Only `http` and `https` URLs with a host. User information in the URL is not sent.
    package init(url: String) throws(DownstreamHTTPFailure) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            var host = components.host, !host.isEmpty
        else { throw .invalidURL }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        secure = scheme == "https"
        self.host = host
        port = components.port ?? (secure ? 443 : 80)
        var path = components.percentEncodedPath
        if path.isEmpty { path = "/" }
        if let query = components.percentEncodedQuery { path += "?" + query }
        self.path = path
        let named = host.contains(":") ? "[\(host)]" : host
        authority = components.port.map { "\(named):\($0)" } ?? named
    }

    /// Scheme, host and port only: the path and query may carry a credential.
    package var description: String { "\(secure ? "https" : "http")://\(authority)" }

    /// Whether a connection made for one serves the other (scheme, host and port alike).
    func sameServer(as other: DownstreamHTTPTarget) -> Bool {
        secure == other.secure && port == other.port && host == other.host
    }

    /// An address rather than a name (not sent as SNI; TLS checks the certificate's addresses).
    var isIPAddress: Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0 == "." || $0.isASCII && $0.isNumber }
    }
}
