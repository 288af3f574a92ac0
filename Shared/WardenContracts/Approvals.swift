import Foundation

/// Calls that wait for people: kept by the approvals service (schema `approvals`). Gateways open,
/// claim and finish requests; approvers decide them through a gateway, which names who they are.
public enum ApprovalEndpoints {
    /// Opens a request for a call, or joins the one already open for the same call (same org,
    /// agent, tool and arguments), or says a remembered approval lets it through.
    public static let open = ServiceEndpoint<ApprovalOpening, ApprovalTicket>(.approvals, "requests.open")
    /// The request as the waiting gateway sees it.
    public static let ticket = ServiceEndpoint<ApprovalReference, ApprovalTicket>(.approvals, "requests.ticket")
    /// Takes the right to run an approved call: granted once, to one claim id.
    public static let claim = ServiceEndpoint<ApprovalClaim, ApprovalTicket>(.approvals, "requests.claim")
    /// Stores what the call returned; later retries get it instead of running it again.
    public static let finish = ServiceEndpoint<ApprovalFinish, ApprovalTicket>(.approvals, "requests.finish")
    public static let list = ServiceEndpoint<ApprovalQuery, ApprovalRequestList>(.approvals, "requests.list")
    public static let get = ServiceEndpoint<ApprovalLookup, ApprovalRequest>(.approvals, "requests.get")
    public static let decide = ServiceEndpoint<ApprovalDecision, ApprovalRequest>(.approvals, "requests.decide")
    /// Where the approvals service announces every change of a request: a wake-up for waiting
    /// gateways (they read the state back before acting) and the feed of the approvers' live
    /// channels (each gateway keeps an org's changes to that org's approvers).
    public static let changesSubject = "warden.approvals.changes"
    /// The same changes, durably (JetStream stream `WARDEN_APPROVAL_NOTICES`, created by the
    /// gateway): what the gateway turns into Slack messages and webhook calls, retried until they
    /// are delivered or dead-lettered.
    public static let noticesSubject = "warden.approvals.notices"
}

/// The states of a request. `running` and `executed` follow `approved` (the call is being run,
/// and has run); `rejected` and `expired` end it.
public enum ApprovalState: String, Codable, Sendable, CaseIterable {
    case pending, approved, rejected, expired, running, executed
}

public struct ApprovalReference: Codable, Sendable, Equatable {
    public var id: String
    public init(id: String) { self.id = id }
}

/// What a gateway asks for when policy says a call needs approval.
public struct ApprovalOpening: Codable, Sendable, Equatable {
    public var org: String
    public var agent: String
    /// The user the agent acts for.
    public var user: String
    public var client: String?
    public var server: String
    /// The namespaced tool name.
    public var tool: String
    /// The arguments as approvers see them (JSON text; redacted where policy says).
    public var arguments: String
    /// SHA-256 of the call (org, agent, acting user, tool, canonical arguments): retries of one
    /// call share it.
    public var callKey: String
    public var rule: String
    public var approverRoles: [String]
    public var approverUsers: [String]
    public var needed: Int
    public var expiresSeconds: Int
    public var allowSelf: Bool

    public init(
        org: String, agent: String, user: String, client: String?, server: String, tool: String, arguments: String, callKey: String, rule: String,
        approverRoles: [String], approverUsers: [String], needed: Int, expiresSeconds: Int, allowSelf: Bool
    ) {
        self.org = org
        self.agent = agent
        self.user = user
        self.client = client
        self.server = server
        self.tool = tool
        self.arguments = arguments
        self.callKey = callKey
        self.rule = rule
        self.approverRoles = approverRoles
        self.approverUsers = approverUsers
        self.needed = needed
        self.expiresSeconds = expiresSeconds
        self.allowSelf = allowSelf
    }
}

/// A request as the gateway that runs (or waits for) its call sees it.
public struct ApprovalTicket: Codable, Sendable, Equatable {
    public var id: String
    public var state: ApprovalState
    /// A remembered approval let the call through: no request was opened.
    public var remembered: Bool
    /// The arguments an approver replaced the call's with (JSON text).
    public var modifiedArguments: String?
    /// Why it was rejected (or that it expired), for the agent.
    public var reason: String?
    public var decidedBy: [String]
    public var expiresAt: Date
    /// This gateway holds the claim: it runs the call and finishes the request.
    public var claimed: Bool
    /// The stored outcome of an executed call: a JSON-RPC result, or error object (JSON text).
    public var outcome: String?
    public var outcomeIsError: Bool?

    public init(
        id: String, state: ApprovalState, remembered: Bool = false, modifiedArguments: String? = nil, reason: String? = nil, decidedBy: [String] = [],
        expiresAt: Date, claimed: Bool = false, outcome: String? = nil, outcomeIsError: Bool? = nil
    ) {
        self.id = id
        self.state = state
        self.remembered = remembered
        self.modifiedArguments = modifiedArguments
        self.reason = reason
        self.decidedBy = decidedBy
        self.expiresAt = expiresAt
        self.claimed = claimed
        self.outcome = outcome
        self.outcomeIsError = outcomeIsError
    }
}

public struct ApprovalClaim: Codable, Sendable, Equatable {
    public var id: String
    /// The claimer's own id for this claim (asking again with it after a lost answer is safe).
    public var claim: String

    public init(id: String, claim: String) {
        self.id = id
        self.claim = claim
    }
}

public struct ApprovalFinish: Codable, Sendable, Equatable {
    public var id: String
    public var claim: String
    public var outcome: String
    public var outcomeIsError: Bool

    public init(id: String, claim: String, outcome: String, outcomeIsError: Bool) {
        self.id = id
        self.claim = claim
        self.outcome = outcome
        self.outcomeIsError = outcomeIsError
    }
}

/// Who asks, as the gateway authenticated them: an approver of `org` with `role`.
public struct Approver: Codable, Sendable, Equatable {
    public var org: String
    public var user: String
    public var role: String

    public init(org: String, user: String, role: String) {
        self.org = org
        self.user = user
        self.role = role
    }
}

public struct ApprovalQuery: Codable, Sendable, Equatable {
    public var approver: Approver
    /// Only requests in these states (none: every state).
    public var states: [ApprovalState]?
    public var limit: Int?

    public init(approver: Approver, states: [ApprovalState]? = nil, limit: Int? = nil) {
        self.approver = approver
        self.states = states
        self.limit = limit
    }
}

public struct ApprovalLookup: Codable, Sendable, Equatable {
    public var approver: Approver
    public var id: String

    public init(approver: Approver, id: String) {
        self.approver = approver
        self.id = id
    }
}

public struct ApprovalDecision: Codable, Sendable, Equatable {
    public enum Verdict: String, Codable, Sendable { case approve, reject }

    public var approver: Approver
    public var id: String
    public var verdict: Verdict
    /// The agent sees it (rejections).
    public var reason: String?
    /// Approve these arguments instead (JSON object text); policy checks them again.
    public var arguments: String?
    /// Let the same agent make the same call (or, with `rememberAnyArguments`, call the same tool)
    /// without asking, for this long.
    public var rememberSeconds: Int?
    public var rememberAnyArguments: Bool?
    /// The request's `revision` the approver looked at: refused if its arguments changed since.
    public var revision: Int?
    /// Where the decision was made, when not through the approvers' API (`slack:U…`).
    public var via: String?

    public init(
        approver: Approver, id: String, verdict: Verdict, reason: String? = nil, arguments: String? = nil, rememberSeconds: Int? = nil,
        rememberAnyArguments: Bool? = nil, revision: Int? = nil, via: String? = nil
    ) {
        self.approver = approver
        self.id = id
        self.verdict = verdict
        self.reason = reason
        self.arguments = arguments
        self.rememberSeconds = rememberSeconds
        self.rememberAnyArguments = rememberAnyArguments
        self.revision = revision
        self.via = via
    }

    /// The longest an approval is remembered.
    public static let maximumRememberSeconds = 7 * 86400
}

/// A request as approvers see it. It never holds a credential: arguments are the agent's, redacted
/// where policy says, and the call's result is not shown.
public struct ApprovalRequest: Codable, Sendable, Equatable {
    public struct Vote: Codable, Sendable, Equatable {
        public var user: String
        public var verdict: ApprovalDecision.Verdict
        public var at: Date

        public init(user: String, verdict: ApprovalDecision.Verdict, at: Date) {
            self.user = user
            self.verdict = verdict
            self.at = at
        }
    }

    public var id: String
    public var org: String
    public var state: ApprovalState
    public var agent: String
    public var user: String
    public var client: String?
    public var server: String
    public var tool: String
    public var arguments: String
    public var modifiedArguments: String?
    public var rule: String
    public var approverRoles: [String]
    public var approverUsers: [String]
    public var needed: Int
    public var votes: [Vote]
    public var reason: String?
    public var createdAt: Date
    public var expiresAt: Date
    public var decidedAt: Date?
    public var rememberSeconds: Int?
    /// Counts changes of the arguments to approve (0: the agent's); a decision may name the one it saw.
    public var revision: Int

    public init(
        id: String, org: String, state: ApprovalState, agent: String, user: String, client: String?, server: String, tool: String, arguments: String,
        modifiedArguments: String?, rule: String, approverRoles: [String], approverUsers: [String], needed: Int, votes: [Vote], reason: String?,
        createdAt: Date, expiresAt: Date, decidedAt: Date?, rememberSeconds: Int?, revision: Int = 0
    ) {
        self.id = id
        self.org = org
        self.state = state
        self.agent = agent
        self.user = user
        self.client = client
        self.server = server
        self.tool = tool
        self.arguments = arguments
        self.modifiedArguments = modifiedArguments
        self.rule = rule
        self.approverRoles = approverRoles
        self.approverUsers = approverUsers
        self.needed = needed
        self.votes = votes
        self.reason = reason
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.decidedAt = decidedAt
        self.rememberSeconds = rememberSeconds
        self.revision = revision
    }
}

public struct ApprovalRequestList: Codable, Sendable, Equatable {
    public var requests: [ApprovalRequest]
    public init(requests: [ApprovalRequest]) { self.requests = requests }
}

/// One change of a request, as announced on `warden.approvals.changes.<org>`.
public struct ApprovalChange: Codable, Sendable, Equatable {
    /// Unique per change: deliveries of one change are recognised as one.
    public var id: String
    /// `opened`, `voted`, `modified` (an approver changed the arguments; the others approve the new
    /// ones), `approved`, `rejected`, `expired`, `running`, `executed`, `abandoned` (its gateway
    /// stopped mid-call: outcome unknown), `superseded` (policy now asks for other approvers).
    public var event: String
    public var request: ApprovalRequest

    public init(id: String = UUID().uuidString, event: String, request: ApprovalRequest) {
        self.id = id
        self.event = event
        self.request = request
    }
}

/// Where an org's approvers hear of requests besides the live channels: a Slack incoming webhook
/// (with Approve and Reject buttons) and a generic webhook. Kept in the vault as the org's secret
/// `approvals/channels` (the URLs and secrets in it are credentials); shown with secrets masked.
public struct ApprovalChannels: Codable, Sendable, Equatable {
    /// A Slack incoming webhook URL.
    public var slackWebhookURL: String?
    /// The Slack app's signing secret: button clicks count only when signed with it.
    public var slackSigningSecret: String?
    /// Slack user id → Warden user id: who may click, as whom.
    public var slackUsers: [String: String]?
    /// A URL that gets each change as JSON, signed with HMAC-SHA256 (`webhookSecret`).
    public var webhookURL: String?
    public var webhookSecret: String?

    public init(
        slackWebhookURL: String? = nil, slackSigningSecret: String? = nil, slackUsers: [String: String]? = nil, webhookURL: String? = nil,
        webhookSecret: String? = nil
    ) {
        self.slackWebhookURL = slackWebhookURL
        self.slackSigningSecret = slackSigningSecret
        self.slackUsers = slackUsers
        self.webhookURL = webhookURL
        self.webhookSecret = webhookSecret
    }

    /// The vault path they are kept at (per org).
    public static let secretPath = "approvals/channels"

    /// The same settings with every secret replaced by "set", for showing.
    public var masked: ApprovalChannels {
        ApprovalChannels(
            slackWebhookURL: slackWebhookURL.map { _ in "set" }, slackSigningSecret: slackSigningSecret.map { _ in "set" }, slackUsers: slackUsers,
            webhookURL: webhookURL.flatMap { URL(string: $0)?.host.map { "https://\($0)/…" } } ?? webhookURL.map { _ in "set" },
            webhookSecret: webhookSecret.map { _ in "set" })
    }
}
