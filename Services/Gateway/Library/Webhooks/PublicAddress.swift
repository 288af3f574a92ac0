import Foundation
import NIOCore
import NIOPosix
import Synchronization
import WardenPolicyEngine

#if canImport(Glibc)
    import Glibc
#endif

/// Where the gateway may connect on someone else's word (webhooks, Slack, audit sinks, OAuth client
/// metadata documents): a host is resolved first, and every address it resolves to must be public,
/// however it is written (`127.1`, `2130706433` and `[::ffff:10.0.0.1]` resolve to what they are).
/// One place decides what is public and how names are resolved.
enum PublicAddress {
    /// Ranges a fetch may never reach: this machine, private networks, link-local (cloud metadata
    /// services at 169.254.169.254), carrier-grade NAT, multicast, documentation and reserved ranges.
    static let forbiddenRanges: [IPAddressRange] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24",
        "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3", "::/128", "::1/128", "64:ff9b::/96", "100::/64",
        "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "192.88.99.0/24", "::/96", "2002::/16", "2001::/32",
        "64:ff9b:1::/48",
    ].compactMap(IPAddressRange.init)

    package static func isPublic(_ address: String) -> Bool {
        guard let bytes = IPAddressRange.bytes(address) else { return false }
        return !forbiddenRanges.contains { $0.contains(bytes) }
    }

    /// Host names are resolved here, off the event loops and apart from NIO's shared blocking pool
    /// (which hashes passwords).
    static let resolvers: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        return pool
    }()

    /// The host's addresses, or nil when the lookup did not end within `limit`. Nobody waits for a
    /// lookup past that (`getaddrinfo` cannot be cancelled; it ends in its thread when the system's
    /// resolver gives up).
    static func addresses(of host: String, within limit: TimeAmount) async -> [String]? {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: [String]?.self)
        let once = Once()
        let timer = loop.scheduleTask(in: limit) { if once.first() { promise.succeed(nil) } }
        resolvers.runIfActive(eventLoop: loop) { resolve(host) }.whenComplete { result in
            timer.cancel()
            if once.first() { promise.succeed((try? result.get()) ?? []) }
        }
        return (try? await promise.futureResult.get()) ?? nil
    }

    /// True the first time only.
    final class Once: Sendable {
        private let done = Mutex(false)

        func first() -> Bool {
            done.withLock { done in
                defer { done = true }
                return !done
            }
        }
    }

    static func resolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                addresses.append(String(cString: buffer))
            }
            cursor = info.pointee.ai_next
        }
        return addresses
    }
}
