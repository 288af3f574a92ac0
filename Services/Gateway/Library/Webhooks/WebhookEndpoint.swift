import Foundation

/// Which URLs an org admin may make the gateway post to: https to a named host or a public
/// address, never a literal loopback, private or link-local one (where it would reach inside the
/// network), checked when the setting is made; names (and addresses written otherwise, `127.1`) are
/// resolved and checked again at each delivery (`WebhookPoster`).
/// With `allowLocal` (`WARDEN_APPROVAL_LOCAL_ENDPOINTS=true`: trials and tests) http or https on
/// this machine is allowed too.
package enum WebhookEndpoint {
    /// Why `url` (the setting called `name`) may not be used; nil when it may.
    package static func problem(_ url: String, name: String, allowLocal: Bool) -> String? {
        guard url.utf8.count <= 2_048, let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
            let host = parsed.host?.lowercased(), !host.isEmpty
        else {
            return "\(name) is not a URL"
        }
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
        if allowLocal, loopback, scheme == "http" || scheme == "https" { return nil }
        guard scheme == "https" else { return "\(name) must be https" }
        if isInternal(host) { return "\(name) may not point at a loopback, private or link-local address" }
        return nil
    }

    /// A literal address inside the network.
    static func isInternal(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if bare == "localhost" || bare.hasSuffix(".localhost") { return true }
        let octets = bare.split(separator: ".").compactMap { UInt8($0) }
        if octets.count == 4, bare.split(separator: ".").count == 4 {
            switch (octets[0], octets[1]) {
            case (0, _), (10, _), (127, _), (169, 254), (192, 168): return true
            case (172, 16...31), (100, 64...127): return true
            default: return false
            }
        }
        if bare.contains(":") {
            let lower = bare.lowercased()
            return lower == "::1" || lower == "::" || lower.hasPrefix("fc") || lower.hasPrefix("fd") || lower.hasPrefix("fe8")
                || lower.hasPrefix("fe9")
                || lower.hasPrefix("fea") || lower.hasPrefix("feb") || lower.hasPrefix("::ffff:")
        }
        return false
    }
}
