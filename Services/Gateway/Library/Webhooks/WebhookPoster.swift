import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import WardenContracts

/// Posts to an endpoint an org admin named (approval webhooks, Slack, audit sinks) without letting
/// it reach inside the network: the host is resolved first and every address must be public (no
/// loopback, private, link-local — cloud metadata at 169.254.169.254 —, carrier-grade NAT or reserved
/// range, however the address is written: `127.1`, `2130706433` and `[::ffff:10.0.0.1]` resolve to
/// what they are), and the connection goes to the address checked (TLS still verifies the name).
/// Redirects are not followed. Resolving, connecting and the answer's head together take at most
/// `timeout`: an endpoint (or a DNS server) that answers slowly cannot hold a delivery.
struct WebhookPoster: Sendable {
    /// Endpoints on this machine's loopback are allowed (`WARDEN_APPROVAL_LOCAL_ENDPOINTS=true`).
    var allowLocal = false
    var timeout = Duration.seconds(10)

    /// How a post went.
    enum Outcome: Equatable, Sendable, CustomStringConvertible {
        case delivered
        /// The endpoint answered with a status outside 2xx.
        case status(Int)
        /// Its host resolves to an address inside the network (or to none).
        case forbiddenAddress
        case unreachable
        case timedOut

        var description: String {
            switch self {
            case .delivered: "delivered"
            case .status(let code): "HTTP \(code)"
            case .forbiddenAddress: "the endpoint's host does not resolve to public addresses only"
            case .unreachable: "cannot reach the endpoint"
            case .timedOut: "the endpoint did not answer in time"
            }
        }
    }

    func post(_ url: String, headers: [(String, String)], body: Data) async -> Outcome {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else { return .unreachable }
        let started = ContinuousClock.now
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let seconds = TimeAmount.seconds(timeout.components.seconds)
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: seconds, read: seconds))
        if !(allowLocal && ["127.0.0.1", "localhost", "::1"].contains(bare.lowercased())) {
            guard let addresses = await PublicAddress.addresses(of: bare, within: seconds) else { return .timedOut }
            guard !addresses.isEmpty, addresses.allSatisfy(PublicAddress.isPublic) else { return .forbiddenAddress }
            configuration.dnsOverride = [host: addresses[0]]
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "warden-gateway/\(WardenVersion.current)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: body))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let remaining = timeout - (ContinuousClock.now - started)
        let prepared = request
        // Connecting and the answer's head within what is left of `timeout`; the answer's status
        // decides (its body is not read: the client is shut down after each post).
        let outcome = await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    let response = try await client.execute(prepared, timeout: seconds)
                    return (200..<300).contains(response.status.code) ? .delivered : .status(Int(response.status.code))
                } catch let error as HTTPClientError where [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) {
                    return .timedOut
                } catch {
                    return Task.isCancelled ? nil : .unreachable
                }
            }
            group.addTask {
                try? await Task.sleep(for: remaining)
                return Task.isCancelled ? nil : .timedOut
            }
            var first = Outcome.timedOut
            for await outcome in group {
                if let outcome {
                    first = outcome
                    break
                }
            }
            group.cancelAll()
            return first
        }
        try? await client.shutdown()
        return outcome
    }
}
