import Foundation
import NIOCore
import WardenPolicyEngine

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// mTLS identity through a trusted reverse proxy. The proxy (Envoy, Istio, NGINX with a header
/// rule) terminates TLS, verifies the agent's client certificate and forwards its identity in
/// `X-Forwarded-Client-Cert`. The gateway believes that header only from the configured proxy
/// addresses; from anywhere else it is ignored, since any client can write it.
///
/// The certificate's URI SAN is a SPIFFE ID naming the org and the agent (or service account):
/// `spiffe://<trust domain>/org/<org>/agent/<agent id>`.
package struct ClientCertificateTrust: Sendable, Equatable {
    package static let header = "X-Forwarded-Client-Cert"

    package let proxies: [IPAddressRange]
    package let trustDomain: String

    package init(proxies: [IPAddressRange], trustDomain: String) {
        self.proxies = proxies
        self.trustDomain = trustDomain.lowercased()
    }

    /// From `WARDEN_MTLS_TRUSTED_PROXIES` (comma-separated addresses or CIDR ranges) and
    /// `WARDEN_MTLS_TRUST_DOMAIN`; nil (off) when no proxy is configured.
    package static func configured(proxies: String?, trustDomain: String?) throws(ConfigurationProblem) -> ClientCertificateTrust? {
        let entries = (proxies ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !entries.isEmpty else { return nil }
        var ranges: [IPAddressRange] = []
        for entry in entries {
            guard let range = IPAddressRange(entry) else { throw ConfigurationProblem("'\(entry.prefix(64))' is not an IP address or CIDR range") }
            ranges.append(range)
        }
        guard let domain = trustDomain?.trimmingCharacters(in: .whitespaces), !domain.isEmpty, !domain.contains("/") else {
            throw ConfigurationProblem("WARDEN_MTLS_TRUST_DOMAIN must name the SPIFFE trust domain of agent certificates (e.g. warden.example.com)")
        }
        return ClientCertificateTrust(proxies: ranges, trustDomain: domain)
    }

    package func trusts(peer: SocketAddress?) -> Bool {
        guard let address = peer?.ipAddress, let bytes = IPAddressRange.bytes(address) else { return false }
        return proxies.contains { $0.contains(bytes) }
    }

    /// The org and agent a forwarded certificate names, or why it names none.
    package func identity(fromHeader value: String) -> Result<(org: String, agent: String), CertificateRejection> {
        guard let element = Self.elements(value).last else { return .failure(CertificateRejection("the client-certificate header is empty")) }
        guard let uri = element["uri"] else { return .failure(CertificateRejection("the client certificate has no URI SAN")) }
        return identity(spiffeID: uri)
    }

    package func identity(spiffeID: String) -> Result<(org: String, agent: String), CertificateRejection> {
        guard spiffeID.lowercased().hasPrefix("spiffe://") else {
            return .failure(CertificateRejection("the client certificate's URI is not a SPIFFE ID"))
        }
        let rest = spiffeID.dropFirst("spiffe://".count)
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.first?.lowercased() == trustDomain else {
            return .failure(CertificateRejection("the client certificate is not from trust domain '\(trustDomain)'"))
        }
        guard parts.count == 5, parts[1] == "org", parts[3] == "agent", !parts[2].isEmpty, !parts[4].isEmpty, parts[2].count <= 64,
            parts[4].count <= 64
        else {
            return .failure(CertificateRejection("the client certificate's SPIFFE ID must be spiffe://\(trustDomain)/org/<org>/agent/<agent id>"))
        }
        return .success((parts[2], parts[4]))
    }

    /// XFCC: elements separated by commas (one per proxy hop, the nearest last), each `key=value`
    /// pairs separated by semicolons; values may be double-quoted (and then hold , ; =).
    static func elements(_ value: String) -> [[String: String]] {
        var elements: [[String: String]] = []
        var current: [String: String] = [:]
        var key = "", text = "", inKey = true, quoted = false, escaped = false
        func endPair() {
            let name = key.trimmingCharacters(in: .whitespaces).lowercased()
            if !name.isEmpty, current[name] == nil { current[name] = text.trimmingCharacters(in: .whitespaces) }
            key = ""; text = ""; inKey = true
        }
        for character in value {
            if quoted {
                if escaped {
                    text.append(character); escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    quoted = false
                } else {
                    text.append(character)
                }
                continue
            }
            switch character {
            case "\"" where !inKey: quoted = true
            case "=" where inKey: inKey = false
            case ";": endPair()
            case ",":
                endPair()
                if !current.isEmpty { elements.append(current) }
                current = [:]
            default: if inKey { key.append(character) } else { text.append(character) }
            }
        }
        endPair()
        if !current.isEmpty { elements.append(current) }
        return elements
    }
}
