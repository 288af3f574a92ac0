import Foundation
import WardenContracts

/// What Slack shows of a change (Block Kit): a new request with who asks, what, under which rule,
/// its arguments (as approvers see them: redacted where policy says) and Approve / Reject buttons
/// whose value is the request id; a decision or expiry as one line.
enum SlackMessage {
    static func blocks(for change: ApprovalChange) -> Data {
        let request = change.request
        var message: [String: Any]
        if change.event == "opened" {
            let arguments = String(request.arguments.prefix(2500))
            message = [
                "text": "\(request.tool) needs approval (\(request.id))",
                "blocks": [
                    [
                        "type": "section",
                        "text": [
                            "type": "mrkdwn",
                            "text":
                                "*\(escape(request.tool))* needs approval\nAgent `\(escape(request.agent))` acting for `\(escape(request.user))`\n"
                                + "Rule `\(escape(request.rule))` · \(request.needed) approval\(request.needed == 1 ? "" : "s") needed · request `\(request.id)`",
                        ],
                    ],
                    ["type": "section", "text": ["type": "mrkdwn", "text": "```\(escape(arguments))```"]],
                    [
                        "type": "actions", "block_id": "warden-approval",
                        "elements": [
                            [
                                "type": "button", "action_id": "approve", "style": "primary", "value": request.id,
                                "text": ["type": "plain_text", "text": "Approve"],
                            ],
                            [
                                "type": "button", "action_id": "reject", "style": "danger", "value": request.id,
                                "text": ["type": "plain_text", "text": "Reject"],
                            ],
                        ],
                    ],
                ],
            ]
        } else {
            let who = request.votes.last.map { " by \($0.user)" } ?? ""
            message = ["text": "\(request.tool) (\(request.id)): \(change.event)\(change.event == "expired" ? "" : who)"]
        }
        return (try? JSONSerialization.data(withJSONObject: message, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// Slack's escaping for message text: &, < and > (so nothing in arguments becomes a link or mention).
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
