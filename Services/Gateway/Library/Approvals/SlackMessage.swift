import Foundation
import WardenContracts

/// What Slack shows of a change (Block Kit): a new request (or one whose arguments an approver
/// changed) with who asks, what, under which rule, its arguments as approvers see them (redacted
/// where policy says) and Approve / Reject buttons naming the request and the arguments' revision;
/// a decision or expiry as one line. Arguments too long for a message are cut and get no buttons
/// (decide them where they show whole: the inbox or the CLI).
enum SlackMessage {
    /// Slack's limit for a section's text, less room for the code fence.
    static let maximumArguments = 2_900

    static func blocks(for change: ApprovalChange) -> Data {
        let request = change.request
        var message: [String: Any]
        if change.event == "opened" || change.event == "modified" {
            let (arguments, cut) = Self.code(request.modifiedArguments ?? request.arguments)
            let heading =
                change.event == "opened"
                ? "*\(escape(request.tool))* needs approval"
                : "*\(escape(request.tool))*: an approver changed the arguments; approve these to run it"
            var blocks: [[String: Any]] = [
                [
                    "type": "section",
                    "text": [
                        "type": "mrkdwn",
                        "text":
                            "\(heading)\nAgent `\(escape(request.agent))` acting for `\(escape(request.user))`\n"
                            + "Rule `\(escape(request.rule))` · \(request.needed) approval\(request.needed == 1 ? "" : "s") needed · request `\(request.id)`",
                    ],
                ],
                ["type": "section", "text": ["type": "mrkdwn", "text": "```\(arguments)```"]],
            ]
            if cut {
                blocks.append([
                    "type": "context", "elements": [["type": "mrkdwn", "text": "The arguments are cut here: decide in the Warden inbox or CLI."]],
                ])
            } else {
                let value = "\(request.id)#\(request.revision)"
                blocks.append([
                    "type": "actions", "block_id": "warden-approval",
                    "elements": [
                        [
                            "type": "button", "action_id": "approve", "style": "primary", "value": value,
                            "text": ["type": "plain_text", "text": "Approve"],
                        ],
                        [
                            "type": "button", "action_id": "reject", "style": "danger", "value": value,
                            "text": ["type": "plain_text", "text": "Reject"],
                        ],
                    ],
                ])
            }
            message = ["text": escape("\(request.tool) needs approval (\(request.id))"), "blocks": blocks]
        } else {
            let who = request.votes.last.map { " by \($0.user)" } ?? ""
            message = ["text": escape("\(request.tool) (\(request.id)): \(change.event)\(change.event == "expired" ? "" : who)")]
        }
        return (try? JSONSerialization.data(withJSONObject: message, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// The arguments for a code block: escaped, backticks replaced (they would end the block), cut
    /// to `maximumArguments` characters without splitting an escape; and whether they were cut.
    static func code(_ arguments: String) -> (String, Bool) {
        let escaped = escape(arguments.replacingOccurrences(of: "`", with: "'"))
        guard escaped.count > maximumArguments else { return (escaped, false) }
        var cut = String(escaped.prefix(maximumArguments))
        if let amp = cut.lastIndex(of: "&"), !cut[amp...].contains(";") { cut = String(cut[..<amp]) }
        return (cut + " …", true)
    }

    /// Slack's escaping for message text: &, < and > (so nothing in arguments becomes a link or mention).
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
