import Foundation
import Synchronization
import WardenContracts
import WardenServiceKit

/// Each org's approval channels (Slack, webhook), kept in the vault as the org's secret
/// `approvals/channels`: the URLs and secrets in them are credentials. Read values are kept for
/// `lifetime` (a change made through another replica shows within it).
package final class ApprovalChannelStore: Sendable {
    let client: ServiceClient
    let lifetime: Duration
    private let cache = Mutex<[String: (channels: ApprovalChannels?, until: ContinuousClock.Instant)]>([:])

    package init(client: ServiceClient, lifetime: Duration = .seconds(30)) {
        self.client = client
        self.lifetime = lifetime
    }

    /// The org's channels; nil when none are set.
    package func channels(org: String) async throws(ServiceError) -> ApprovalChannels? {
        if let cached = cache.withLock({ $0[org] }), cached.until > .now { return cached.channels }
        let channels: ApprovalChannels?
        do throws(ServiceError) {
            let value = try await client.call(SecretEndpoints.read, SecretReference(org: org, path: ApprovalChannels.secretPath))
            guard let data = Data(base64Encoded: value.value),
                let decoded = try? EnvelopeCoding.decoder().decode(ApprovalChannels.self, from: data)
            else {
                throw ServiceError(.internal, "the org's approval channels cannot be read")
            }
            channels = decoded
        } catch {
            guard error.code == .notFound else { throw error }
            channels = nil
        }
        remember(channels, org: org)
        return channels
    }

    /// Kept for `lifetime`; at most `capacity` orgs (names nobody uses must not grow the gateway).
    private func remember(_ channels: ApprovalChannels?, org: String) {
        cache.withLock { cache in
            if cache.count >= Self.capacity { cache.removeAll(keepingCapacity: true) }
            cache[org] = (channels, .now + lifetime)
        }
    }

    static let capacity = 1_000

    package func set(_ channels: ApprovalChannels, org: String, actor: String) async throws(ServiceError) {
        let data: Data
        do { data = try EnvelopeCoding.encoder().encode(channels) } catch { throw ServiceError(.badRequest, "the channels cannot be encoded") }
        _ = try await client.call(
            SecretEndpoints.write,
            SecretWrite(
                org: org, path: ApprovalChannels.secretPath, value: data.base64EncodedString(),
                description: "approval channels (Slack, webhook): set with warden approvals channels", actor: actor))
        remember(channels, org: org)
    }

    /// What an org admin may set: a Slack webhook on hooks.slack.com, a webhook on https to a named
    /// host or a public address (never a literal loopback, private or link-local one, where it would
    /// reach inside the network), secrets of a useful length, Slack users mapped to user ids. With
    /// `allowLocal` (`WARDEN_APPROVAL_LOCAL_ENDPOINTS=true`: trials and tests) both may also be
    /// http or https on this machine.
    static func problem(_ channels: ApprovalChannels, allowLocal: Bool = false) -> String? {
        for (name, url) in [("slackWebhookURL", channels.slackWebhookURL), ("webhookURL", channels.webhookURL)] {
            guard let url else { continue }
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host?.lowercased(), !host.isEmpty
            else {
                return "\(name) is not a URL"
            }
            let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
            if allowLocal, loopback, scheme == "http" || scheme == "https" { continue }
            guard scheme == "https" else { return "\(name) must be https" }
            if name == "slackWebhookURL", host != "hooks.slack.com" {
                return "slackWebhookURL is a Slack incoming webhook (https://hooks.slack.com/…)"
            }
            if Self.isInternal(host) { return "\(name) may not point at a loopback, private or link-local address" }
        }
        if channels.slackWebhookURL != nil, (channels.slackSigningSecret ?? "").count < 16 {
            return "slackSigningSecret is the Slack app's signing secret (at least 16 characters)"
        }
        if channels.webhookURL != nil, (channels.webhookSecret ?? "").count < 16 {
            return "webhookSecret signs each delivery: at least 16 characters"
        }
        if let users = channels.slackUsers, users.count > 10_000 || users.contains(where: { $0.key.isEmpty || !$0.value.hasPrefix("usr_") }) {
            return "slackUsers maps Slack user ids (U…) to Warden user ids (usr_…)"
        }
        return nil
    }

    /// A literal address inside the network (names are not resolved here: egress filtering is the
    /// deployment's, see the README).
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
