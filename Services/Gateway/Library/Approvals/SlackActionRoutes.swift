import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// `POST /approvals/slack/:org/actions`: a click on Approve or Reject in Slack. It counts only when
/// Slack signed it with the org's signing secret (`v0=HMAC-SHA256("v0:<timestamp>:<body>")`), at most
/// five minutes ago, never seen before (a replay is refused on every replica: what was signed is
/// remembered in PostgreSQL for an hour), and from a Slack user the org mapped to one of its
/// approvers. The decision is then that approver's, as if made with `warden approvals`, on record as
/// made via Slack, and only for the arguments the message showed (its revision).
package struct SlackActionRoutes: Sendable {
    let channels: ApprovalChannelStore
    let client: ServiceClient
    let database: DatabasePool
    let logger: Logger
    /// How old a signed request may be.
    static let tolerance: TimeInterval = 300

    package init(channels: ApprovalChannelStore, client: ServiceClient, database: DatabasePool, logger: Logger) {
        self.channels = channels
        self.client = client
        self.database = database
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post("/approvals/slack/:org/actions") { request, context in
            do {
                return try await handle(request, org: context.parameters.get("org") ?? "")
            } catch let problem as AdminProblem {
                return problem.response
            } catch let error as ServiceError {
                return AdminProblem(error).response
            } catch {
                logger.error("a Slack action failed", metadata: ["error": "\(error)"])
                return AdminProblem(.unavailable, "the action could not be handled; try again").response
            }
        }
    }

    func handle(_ request: Request, org: String) async throws -> Response {
        guard let buffer = try? await request.body.collect(upTo: 64 << 10) else { throw AdminProblem(.invalid, "the body is at most 64 KiB") }
        let body = Data(buffer.readableBytesView)
        // Nothing is looked up for a request that is not even shaped like a signed Slack one, and
        // an org without Slack looks the same as a bad signature (which orgs use Slack is not said).
        let unsigned = AdminProblem(.unauthorized, "the request is not signed by Slack for this org")
        guard org.wholeMatch(of: /[A-Za-z0-9._-]{1,64}/) != nil,
            let timestamp = request.headers[HTTPField.Name("X-Slack-Request-Timestamp")!],
            let signature = request.headers[HTTPField.Name("X-Slack-Signature")!]
        else {
            throw unsigned
        }
        guard let seconds = TimeInterval(timestamp), abs(Date().timeIntervalSince1970 - seconds) <= Self.tolerance else {
            throw AdminProblem(.unauthorized, "the signed request is too old (or from the future)")
        }
        guard let settings = try await channels.channels(org: org), let secret = settings.slackSigningSecret,
            Self.verify(signature: signature, secret: secret, timestamp: timestamp, body: body)
        else {
            throw unsigned
        }
        // Once only: a click replayed (within the five minutes a signature is good for) is refused.
        // Keyed by what was signed, not by how the signature is spelled (hex in either case).
        var signed = Data("\(timestamp):".utf8)
        signed.append(body)
        let key = SHA256.hash(data: signed).map { String(format: "%02x", $0) }.joined()
        let fresh = try await database.withConnection { connection in
            try await connection.query("DELETE FROM slack_actions_seen WHERE seen_at < now() - interval '1 hour'", logger: logger)
            let rows = try await connection.query(
                "INSERT INTO slack_actions_seen (signature) VALUES (\(key)) ON CONFLICT DO NOTHING RETURNING signature", logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
        guard fresh else { throw AdminProblem(.conflict, "this Slack action was already received") }
        guard let action = SlackAction(form: body) else { throw AdminProblem(.invalid, "not a Slack block action with an approval button") }
        guard let userID = settings.slackUsers?[action.slackUser] else {
            throw AdminProblem(.forbidden, "this Slack user is not mapped to an approver of the org")
        }
        let users = try await client.call(PrincipalEndpoints.listUsers, OrgReference(org: org)).users
        guard let user = users.first(where: { $0.id == userID }), !user.disabled else {
            throw AdminProblem(.forbidden, "the mapped user is not an enabled user of the org")
        }
        let approver = Approver(org: org, user: user.id, role: user.role)
        let decision = ApprovalDecision(
            approver: approver, id: action.request, verdict: action.verdict, reason: action.verdict == .reject ? "rejected in Slack" : nil,
            revision: action.revision, via: "slack:\(action.slackUser.prefix(64))")
        let text: String
        do {
            let decided = try await client.call(ApprovalEndpoints.decide, decision)
            text =
                "\(decided.tool) (\(decided.id)): \(decided.state == .pending ? "approval recorded; it needs more approvers" : decided.state.rawValue)"
            logger.info("approval decided in Slack", metadata: ["approval.id": "\(decided.id)", "user": "\(user.id)"])
        } catch {
            // The clicker sees why (already decided, not theirs to decide) in Slack.
            text = "Not done: \(error.message)"
        }
        return ApproverRoutes.json(.ok, Reply(text: text))
    }

    /// Shown to the clicker only (Slack's ephemeral response); the message stays as it was.
    struct Reply: Encodable {
        var responseType = "ephemeral"
        var replaceOriginal = false
        var text: String

        enum CodingKeys: String, CodingKey {
            case responseType = "response_type"
            case replaceOriginal = "replace_original"
            case text
        }
    }

    /// Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<body>` (compared in constant time).
    static func verify(signature: String, secret: String, timestamp: String, body: Data) -> Bool {
        guard signature.hasPrefix("v0="), let given = Self.hex(String(signature.dropFirst(3))) else { return false }
        var signed = Data("v0:\(timestamp):".utf8)
        signed.append(body)
        return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: signed, using: SymmetricKey(data: Data(secret.utf8)))
    }

    static func hex(_ text: String) -> [UInt8]? {
        guard text.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

/// The part of a Slack block action Warden reads: who clicked which button of which request.
struct SlackAction {
    var slackUser: String
    var verdict: ApprovalDecision.Verdict
    var request: String
    /// The revision of the arguments the message showed (`apr_…#N`).
    var revision: Int?

    /// From the form body Slack posts (`payload=<JSON>`).
    init?(form body: Data) {
        let form = String(decoding: body, as: UTF8.self)
        guard
            let field = form.split(separator: "&").first(where: { $0.hasPrefix("payload=") }),
            let json = String(field.dropFirst("payload=".count)).replacingOccurrences(of: "+", with: " ").removingPercentEncoding,
            let payload = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            payload["type"] as? String == "block_actions",
            let user = (payload["user"] as? [String: Any])?["id"] as? String,
            let action = (payload["actions"] as? [[String: Any]])?.first,
            let verdict = (action["action_id"] as? String).flatMap(ApprovalDecision.Verdict.init(rawValue:)),
            let value = action["value"] as? String, value.hasPrefix("apr_")
        else { return nil }
        let parts = value.split(separator: "#", maxSplits: 1)
        self.slackUser = user
        self.verdict = verdict
        self.request = String(parts[0])
        self.revision = parts.count == 2 ? Int(parts[1]) : nil
    }
}
