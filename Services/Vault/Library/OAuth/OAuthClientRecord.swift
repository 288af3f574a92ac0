import Foundation
import WardenContracts

/// An OAuth client as the vault stores it: the value of secret `oauth/<name>/client`.
package struct OAuthClientRecord: Codable, Sendable {
    package var clientID: String
    package var clientSecret: String?
    package var authorizeURL: String
    package var tokenURL: String
    package var scopes: [String]

    /// Checks what an admin gave: endpoints over HTTPS at a host name or public address (plain HTTP
    /// to a loopback address only when `allowsLoopbackHTTP`, for providers under test), ids and
    /// scopes of printable text. The vault posts codes and refresh tokens to the token endpoint, so
    /// an org admin must not be able to aim it at the vault's own network by address.
    package static func validated(_ settings: OAuthClientSettings, allowsLoopbackHTTP: Bool) throws(ServiceError) -> OAuthClientSettings {
        try OAuthConnectionName.validate(settings.name)
        for (field, value) in [("authorizeURL", settings.authorizeURL), ("tokenURL", settings.tokenURL)] {
            guard let url = URL(string: value), let host = url.host?.lowercased(), !host.isEmpty, url.user == nil, url.fragment == nil,
                value.utf8.count <= 2048
            else {
                throw ServiceError(.badRequest, "\(field) must be an https URL without credentials or fragment")
            }
            let loopback = ["localhost", "::1", "[::1]"].contains(host) || host.hasPrefix("127.")
            switch url.scheme {
            case "https" where !loopback && !Self.isPrivateAddress(host): break
            case "http" where loopback && allowsLoopbackHTTP: break
            default:
                throw ServiceError(
                    .badRequest, "\(field) must be an https URL at a public host (not a loopback, private or link-local address)")
            }
        }
        func printable(_ text: String) -> Bool { !text.isEmpty && text.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) } }
        guard printable(settings.clientID), settings.clientID.utf8.count <= 512 else {
            throw ServiceError(.badRequest, "the client id must be 1 to 512 printable characters without spaces")
        }
        if let secret = settings.clientSecret, !printable(secret) || secret.utf8.count > 4096 {
            throw ServiceError(.badRequest, "the client secret must be 1 to 4096 printable characters without spaces")
        }
        guard settings.scopes.count <= 64, settings.scopes.allSatisfy({ printable($0) && !$0.contains("\"") && !$0.contains("\\") }) else {
            throw ServiceError(.badRequest, "at most 64 scopes, each printable text without spaces, quotes or backslashes")
        }
        return settings
    }

    /// An IP address literal in a private, loopback, link-local or unspecified range.
    static func isPrivateAddress(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        if octets.count == 4, octets.allSatisfy({ $0.map { (0...255).contains($0) } ?? false }) {
            let (a, b) = (octets[0]!, octets[1]!)
            return a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)
                || (a == 100 && (64...127).contains(b))
        }
        guard bare.contains(":") else { return false }
        // IPv6: loopback, unspecified, unique local (fc00::/7), link-local (fe80::/10), mapped IPv4.
        return bare == "::1" || bare == "::" || bare.hasPrefix("fc") || bare.hasPrefix("fd") || bare.hasPrefix("fe8") || bare.hasPrefix("fe9")
            || bare.hasPrefix("fea") || bare.hasPrefix("feb") || bare.hasPrefix("::ffff:")
    }
}
