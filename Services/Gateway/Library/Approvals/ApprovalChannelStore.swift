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
        cache.withLock { $0[org] = (channels, .now + lifetime) }
        return channels
    }

    package func set(_ channels: ApprovalChannels, org: String, actor: String) async throws(ServiceError) {
        let data: Data
        do { data = try EnvelopeCoding.encoder().encode(channels) } catch { throw ServiceError(.badRequest, "the channels cannot be encoded") }
        _ = try await client.call(
            SecretEndpoints.write,
            SecretWrite(
                org: org, path: ApprovalChannels.secretPath, value: data.base64EncodedString(),
                description: "approval channels (Slack, webhook): set with warden approvals channels", actor: actor))
        cache.withLock { $0[org] = (channels, .now + lifetime) }
    }

    /// What an org admin may set: https URLs (http only to this machine, for trials), secrets of
    /// a useful length, Slack users mapped to user ids.
    static func problem(_ channels: ApprovalChannels) -> String? {
        for (name, url) in [("slackWebhookURL", channels.slackWebhookURL), ("webhookURL", channels.webhookURL)] {
            guard let url else { continue }
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host, !host.isEmpty else {
                return "\(name) is not a URL"
            }
            let local = ["127.0.0.1", "localhost", "::1"].contains(host.lowercased())
            guard scheme == "https" || (scheme == "http" && local) else { return "\(name) must be https (http only to this machine)" }
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
}
