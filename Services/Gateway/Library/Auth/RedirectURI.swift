import Foundation

/// Where an authorization server may send a user back with a code. Registered URIs match exactly,
/// except that a loopback one (`http://127.0.0.1`, `http://[::1]`, `http://localhost`) matches any
/// port, as RFC 8252 §7.3 asks for native apps that listen on a free port.
package enum RedirectURI {
    static let loopbackHosts: Set<String> = ["127.0.0.1", "[::1]", "::1", "localhost"]
    /// Schemes that would run or read something in the browser instead of reaching an app.
    static let refusedSchemes: Set<String> = [
        "javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "view-source", "ftp", "ws", "wss",
    ]

    /// Why `uri` cannot be registered; nil when it can: https, http on loopback, or an app's own
    /// scheme (RFC 8252 §7.1: `cursor://…`, `com.example.app:/cb`); no fragment, at most 2,000 bytes.
    package static func problem(_ uri: String) -> String? {
        guard !uri.isEmpty, uri.utf8.count <= 2000 else { return "a redirect URI has 1 to 2000 bytes" }
        guard let components = URLComponents(string: uri), let scheme = components.scheme?.lowercased() else {
            return "'\(uri.prefix(200))' is not an absolute URI"
        }
        guard components.fragment == nil else { return "a redirect URI has no fragment ('#')" }
        switch scheme {
        case "https":
            guard let host = components.host, !host.isEmpty else { return "'\(uri.prefix(200))' has no host" }
            return nil
        case "http":
            guard let host = components.host?.lowercased(), loopbackHosts.contains(host) else {
                return "an http redirect URI must be on loopback (127.0.0.1, [::1] or localhost); use https otherwise"
            }
            return nil
        default:
            return refusedSchemes.contains(scheme) ? "the scheme '\(scheme)' is not allowed for redirects" : nil
        }
    }

    /// Whether `presented` is one of `registered`.
    package static func isRegistered(_ presented: String, in registered: [String]) -> Bool {
        registered.contains { matches(registered: $0, presented: presented) }
    }

    static func matches(registered: String, presented: String) -> Bool {
        if registered == presented { return true }
        guard let want = URLComponents(string: registered), let got = URLComponents(string: presented), want.scheme?.lowercased() == "http",
            got.scheme?.lowercased() == "http", let host = want.host?.lowercased(), loopbackHosts.contains(host), got.host?.lowercased() == host
        else { return false }
        return want.percentEncodedPath == got.percentEncodedPath && want.percentEncodedQuery == got.percentEncodedQuery && got.fragment == nil
            && got.user == nil && got.password == nil
    }

    /// `uri` with `parameters` added to its query (kept in order, percent-encoded).
    package static func adding(_ parameters: [(String, String)], to uri: String) -> String {
        guard var components = URLComponents(string: uri) else { return uri }
        var items = components.queryItems ?? []
        items.append(contentsOf: parameters.map { URLQueryItem(name: $0.0, value: $0.1) })
        components.percentEncodedQuery = items.map { "\(formEncode($0.name))=\(formEncode($0.value ?? ""))" }.joined(separator: "&")
        return components.string ?? uri
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Percent-encoding for a query value: everything but unreserved characters.
    package static func formEncode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }
}
