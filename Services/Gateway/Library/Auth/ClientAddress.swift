import Foundation
import HTTPTypes
import NIOCore
import WardenPolicyEngine
import WardenServiceKit

/// The address a request comes from, for policy conditions: the TCP peer, or, when the peer is one
/// of the configured reverse proxies (`WARDEN_TRUSTED_PROXIES`), the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy. Anyone else's `X-Forwarded-For` is ignored.
struct ClientAddress: Sendable {
    let proxies: [IPAddressRange]

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    func of(peer: SocketAddress?, headers: HTTPFields) -> String? {
        guard let peerAddress = peer?.ipAddress else { return nil }
        guard isProxy(peerAddress), let forwarded = headers.value(Self.forwardedFor) else { return peerAddress }
        for hop in forwarded.split(separator: ",").reversed() {
            let address = hop.trimmingCharacters(in: .whitespaces)
            guard IPAddressRange.bytes(address) != nil else { return peerAddress }  // malformed: trust nothing from it
            if !isProxy(address) { return address }
        }
        return peerAddress
    }

    private func isProxy(_ address: String) -> Bool {
        guard let bytes = IPAddressRange.bytes(address) else { return false }
        return proxies.contains { $0.contains(bytes) }
    }
}
