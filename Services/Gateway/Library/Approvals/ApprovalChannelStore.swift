import Foundation
import WardenContracts
import WardenServiceKit

/// Each org's approval channels (Slack, webhook), kept in the vault as the org's secret
/// `approvals/channels`: the URLs and secrets in them are credentials.
package final class ApprovalChannelStore: Sendable {
    let document: OrgSecretDocument<ApprovalChannels>

    package init(client: ServiceClient, lifetime: Duration = .seconds(30)) {
        document = OrgSecretDocument(
            client: client, path: ApprovalChannels.secretPath,
            description: "approval channels (Slack, webhook): set with warden approvals channels", lifetime: lifetime)
    }

    /// The org's channels; nil when none are set.
    package func channels(org: String) async throws(ServiceError) -> ApprovalChannels? { try await document.value(org: org) }

    package func set(_ channels: ApprovalChannels, org: String, actor: String) async throws(ServiceError) {
        try await document.set(channels, org: org, actor: actor)
    }

    /// What an org admin may set: a Slack webhook on hooks.slack.com, a webhook an org may be
    /// posted to (`WebhookEndpoint`), secrets of a useful length, Slack users mapped to user ids.
    static func problem(_ channels: ApprovalChannels, allowLocal: Bool = false) -> String? {
        for (name, url) in [("slackWebhookURL", channels.slackWebhookURL), ("webhookURL", channels.webhookURL)] {
            guard let url else { continue }
            if let problem = WebhookEndpoint.problem(url, name: name, allowLocal: allowLocal) { return problem }
            let local = allowLocal && WebhookEndpoint.problem(url, name: name, allowLocal: false) != nil
            if name == "slackWebhookURL", !local, URL(string: url)?.host?.lowercased() != "hooks.slack.com" {
                return "slackWebhookURL is a Slack incoming webhook (https://hooks.slack.com/…)"
            }
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
