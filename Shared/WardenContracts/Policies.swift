import Foundation
import WardenMCP

/// Policy documents and decisions, over NATS. An org has one policy (the admin layer) and each of its
/// users may have their own (the user layer, narrowing their own agents); every applied version is
/// kept.
public enum PolicyEndpoints {
    public static let apply = ServiceEndpoint<PolicyApply, PolicyApplied>(.policy, "policies.apply")
    public static let current = ServiceEndpoint<PolicyScope, PolicyVersion>(.policy, "policies.current")
    public static let history = ServiceEndpoint<PolicyScope, PolicyHistory>(.policy, "policies.history")
    public static let rollback = ServiceEndpoint<PolicyRollback, PolicyApplied>(.policy, "policies.rollback")
    /// The decision on a call as the policy would make it, with the layers and rules that made it.
    public static let explain = ServiceEndpoint<PolicyQuestion, PolicyExplanation>(.policy, "policies.explain")
    /// The same decision, for the gateway about to forward a call.
    public static let decide = ServiceEndpoint<PolicyQuestion, PolicyExplanation>(.policy, "policies.decide")
    /// What an agent may call of the given tools, and on which conditions.
    public static let effective = ServiceEndpoint<PolicyListing, PolicyEffective>(.policy, "policies.effective")
    /// Which of the tools an agent may see in a listing.
    public static let visible = ServiceEndpoint<PolicyListing, PolicyListing>(.policy, "policies.visible")
    /// Published after a policy changed: `PolicyChanged`.
    public static let changedSubject = "warden.broadcast.policy"
}

/// Whose policy: the org's (`user` nil) or one user's own.
public struct PolicyScope: Codable, Sendable, Equatable {
    public var org: String
    public var user: String?

    public init(org: String, user: String? = nil) {
        self.org = org
        self.user = user
    }
}

public struct PolicyApply: Codable, Sendable {
    public var scope: PolicyScope
    /// The YAML document.
    public var document: String
    /// Check and compare only: nothing is stored.
    public var dryRun: Bool
    public var actor: String
    /// The org's tools (namespaced), for a dry run to say which agents gain or lose which.
    public var tools: [String]?

    public init(scope: PolicyScope, document: String, dryRun: Bool, actor: String, tools: [String]? = nil) {
        self.scope = scope
        self.document = document
        self.dryRun = dryRun
        self.actor = actor
        self.tools = tools
    }
}

public struct PolicyRollback: Codable, Sendable {
    public var scope: PolicyScope
    /// The version whose document becomes current again (as a new version).
    public var version: Int
    public var actor: String

    public init(scope: PolicyScope, version: Int, actor: String) {
        self.scope = scope
        self.version = version
        self.actor = actor
    }
}

public struct PolicyVersion: Codable, Sendable, Equatable {
    public var scope: PolicyScope
    /// 0: nothing was ever applied (the empty policy: nothing is allowed).
    public var version: Int
    public var document: String
    public var rules: Int
    public var appliedBy: String?
    public var appliedAt: Date?

    public init(scope: PolicyScope, version: Int, document: String, rules: Int, appliedBy: String?, appliedAt: Date?) {
        self.scope = scope
        self.version = version
        self.document = document
        self.rules = rules
        self.appliedBy = appliedBy
        self.appliedAt = appliedAt
    }
}

/// What applying changed: the rules added, removed and changed (by id), and the version stored
/// (the current one on a dry run).
public struct PolicyApplied: Codable, Sendable, Equatable {
    public var version: PolicyVersion
    public var dryRun: Bool
    public var added: [String]
    public var removed: [String]
    public var changed: [String]
    /// On a dry run with the org's tools: the agents whose usable tools would change.
    public var effects: [AgentEffect]?

    /// One agent's tools gained and lost (tools it may list: some call may be allowed).
    public struct AgentEffect: Codable, Sendable, Equatable {
        public var agent: String
        public var name: String
        public var gains: [String]
        public var loses: [String]

        public init(agent: String, name: String, gains: [String], loses: [String]) {
            self.agent = agent
            self.name = name
            self.gains = gains
            self.loses = loses
        }
    }

    public init(
        version: PolicyVersion, dryRun: Bool, added: [String], removed: [String], changed: [String], effects: [AgentEffect]? = nil
    ) {
        self.version = version
        self.dryRun = dryRun
        self.added = added
        self.removed = removed
        self.changed = changed
        self.effects = effects
    }
}

public struct PolicyHistory: Codable, Sendable, Equatable {
    public var versions: [PolicyVersion]
    public init(versions: [PolicyVersion]) { self.versions = versions }
}

/// A call to decide: which agent, which tool (namespaced, `server__tool`), which arguments (JSON
/// text), and what the gateway would know of its context.
public struct PolicyQuestion: Codable, Sendable {
    public var org: String
    public var agent: String
    /// `tool` (nil), `prompt` or `resource`: what `tool` names.
    public var kind: String?
    /// The namespaced name: `server__tool`, `server__prompt`, or a resource's `server+uri`.
    public var tool: String
    public var arguments: String?
    public var clientAddress: String?
    public var client: String?
    /// Claims to assume (token claims, user attributes), for simulation; nil: unknown (conditions on
    /// claims then deny in allow rules and hold in deny rules).
    public var claims: [String: String]?
    public var time: Date?
    /// Roles of a federated token and the token's scopes, as the gateway authenticated them.
    public var roles: [String]?
    public var scopes: [String]?

    public init(
        org: String, agent: String, tool: String, arguments: String? = nil, clientAddress: String? = nil, client: String? = nil,
        claims: [String: String]? = nil, time: Date? = nil, roles: [String]? = nil, scopes: [String]? = nil, kind: String? = nil
    ) {
        self.kind = kind
        self.roles = roles
        self.scopes = scopes
        self.org = org
        self.agent = agent
        self.tool = tool
        self.arguments = arguments
        self.clientAddress = clientAddress
        self.client = client
        self.claims = claims
        self.time = time
    }
}

public struct PolicyExplanation: Codable, Sendable, Equatable {
    public struct Layer: Codable, Sendable, Equatable {
        public var layer: String
        public var outcome: String
        public var rules: [String]
        public var reason: String

        public init(layer: String, outcome: String, rules: [String], reason: String) {
            self.layer = layer
            self.outcome = outcome
            self.rules = rules
            self.reason = reason
        }
    }

    /// `allow`, `deny` or `approve`.
    public var decision: String
    public var layers: [Layer]
    /// The policy versions decided with (org's, user's).
    public var versions: [Int]
    /// The decision read the call's arguments, time or address.
    public var dependsOnCall: Bool
    /// For `approve`: who approves, how many, for how long.
    public var approverRoles: [String]?
    public var approverUsers: [String]?
    public var approvals: Int?
    /// For `approve`: how long a request waits for approvers, the rule that requires it, and whether
    /// the acting user may approve their own agent's call.
    public var approvalExpiresSeconds: Int?
    public var approvalRule: String?
    public var approvalAllowSelf: Bool?
    /// The limits an allowed call counts against (the gateway counts them).
    public var limits: [CallLimit]?
    /// The largest result an allowed call may return, in bytes (its JSON); larger ones are withheld.
    public var maxResultBytes: Int?
    /// JSON paths of arguments to redact in the call's audit record.
    public var redact: [String]?

    public init(
        decision: String, layers: [Layer], versions: [Int], dependsOnCall: Bool, approverRoles: [String]? = nil, approverUsers: [String]? = nil,
        approvals: Int? = nil
    ) {
        self.decision = decision
        self.layers = layers
        self.versions = versions
        self.dependsOnCall = dependsOnCall
        self.approverRoles = approverRoles
        self.approverUsers = approverUsers
        self.approvals = approvals
    }
}

/// A policy that changed (every gateway replica drops what it cached of it).
public struct PolicyChanged: Codable, Sendable, Equatable {
    public var scope: PolicyScope
    public var version: Int

    public init(scope: PolicyScope, version: Int) {
        self.scope = scope
        self.version = version
    }
}

/// Tool names (namespaced) an agent may see: asked with every name, answered with those it may.
public struct PolicyListing: Codable, Sendable, Equatable {
    public var org: String
    public var agent: String
    public var client: String?
    /// `tool` (nil), `prompt` or `resource`: what `tools` names.
    public var kind: String?
    public var tools: [String]

    public init(org: String, agent: String, client: String? = nil, tools: [String], kind: String? = nil) {
        self.kind = kind
        self.org = org
        self.agent = agent
        self.client = client
        self.tools = tools
    }
}

/// What an agent may call of an org's tools: each tool it may use, whether always, on conditions or
/// after approval, and by which rules.
public struct PolicyEffective: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var tool: String
        /// `allow` (whatever the call), `conditional` (on the conditions listed) or `approve`.
        public var decision: String
        public var rules: [String]
        public var conditions: [String]

        public init(tool: String, decision: String, rules: [String], conditions: [String]) {
            self.tool = tool
            self.decision = decision
            self.rules = rules
            self.conditions = conditions
        }
    }

    public var org: String
    public var agent: String
    public var versions: [Int]
    public var tools: [Entry]

    public init(org: String, agent: String, versions: [Int], tools: [Entry]) {
        self.org = org
        self.agent = agent
        self.versions = versions
        self.tools = tools
    }
}

/// A limit a call counts against, as the policy set it: a token bucket (`rate`: `count` calls per
/// `periodSeconds`, `burst` at once) or a `quota` (`count` calls per UTC day), counted separately
/// per value of `per` (agent, user, org, tool).
public struct CallLimit: Codable, Sendable, Equatable, Hashable {
    public enum Kind: String, Codable, Sendable {
        case rate, quota
    }

    public var id: String
    public var kind: Kind
    public var count: Int
    public var periodSeconds: Int
    public var burst: Int
    public var per: [String]

    public init(id: String, kind: Kind, count: Int, periodSeconds: Int, burst: Int, per: [String]) {
        self.id = id
        self.kind = kind
        self.count = count
        self.periodSeconds = periodSeconds
        self.burst = burst
        self.per = per
    }
}

extension PolicyQuestion: HandWrittenJSON {
    public init?(json: JSONValue) {
        do throws(JSONFields.Mismatch) {
            let fields = try JSONFields(json)
            try fields.absentDate("time")
            self.init(
                org: try fields.string("org"), agent: try fields.string("agent"), tool: try fields.string("tool"),
                arguments: try fields.optionalString("arguments"), clientAddress: try fields.optionalString("clientAddress"),
                client: try fields.optionalString("client"), claims: try fields.optionalStringDictionary("claims"),
                roles: try fields.optionalStrings("roles"), scopes: try fields.optionalStrings("scopes"), kind: try fields.optionalString("kind"))
        } catch {
            return nil
        }
    }

    public func writeJSON(to json: inout JSONBytes) {
        json.beginObject()
        json.field("org", org)
        json.field("agent", agent)
        json.field("kind", kind)
        json.field("tool", tool)
        json.field("arguments", arguments)
        json.field("clientAddress", clientAddress)
        json.field("client", client)
        json.field("claims", claims)
        json.field("time", time)
        json.field("roles", roles)
        json.field("scopes", scopes)
        json.endObject()
    }
}

extension PolicyExplanation: HandWrittenJSON {
    public init?(json: JSONValue) {
        do throws(JSONFields.Mismatch) {
            let fields = try JSONFields(json)
            guard let layerValues = try fields.optionalArray("layers") else { return nil }
            let layers = try layerValues.map { value throws(JSONFields.Mismatch) in
                let layer = try JSONFields(value)
                return Layer(
                    layer: try layer.string("layer"), outcome: try layer.string("outcome"), rules: try layer.strings("rules"),
                    reason: try layer.string("reason"))
            }
            self.init(
                decision: try fields.string("decision"), layers: layers, versions: try fields.ints("versions"),
                dependsOnCall: try fields.bool("dependsOnCall"), approverRoles: try fields.optionalStrings("approverRoles"),
                approverUsers: try fields.optionalStrings("approverUsers"), approvals: try fields.optionalInt("approvals"))
            approvalExpiresSeconds = try fields.optionalInt("approvalExpiresSeconds")
            approvalRule = try fields.optionalString("approvalRule")
            approvalAllowSelf = try fields.optionalBool("approvalAllowSelf")
            limits = try fields.optionalArray("limits")?.map { value throws(JSONFields.Mismatch) in
                let limit = try JSONFields(value)
                guard let kind = CallLimit.Kind(rawValue: try limit.string("kind")) else { throw JSONFields.Mismatch() }
                return CallLimit(
                    id: try limit.string("id"), kind: kind, count: try limit.int("count"), periodSeconds: try limit.int("periodSeconds"),
                    burst: try limit.int("burst"), per: try limit.strings("per"))
            }
            maxResultBytes = try fields.optionalInt("maxResultBytes")
            redact = try fields.optionalStrings("redact")
        } catch {
            return nil
        }
    }

    public func writeJSON(to json: inout JSONBytes) {
        json.beginObject()
        json.field("decision", decision)
        json.key("layers")
        json.beginArray()
        for layer in layers {
            json.beginObject()
            json.field("layer", layer.layer)
            json.field("outcome", layer.outcome)
            json.field("rules", layer.rules)
            json.field("reason", layer.reason)
            json.endObject()
        }
        json.endArray()
        json.key("versions")
        json.beginArray()
        for version in versions { json.number(version) }
        json.endArray()
        json.field("dependsOnCall", dependsOnCall)
        json.field("approverRoles", approverRoles)
        json.field("approverUsers", approverUsers)
        json.field("approvals", approvals)
        json.field("approvalExpiresSeconds", approvalExpiresSeconds)
        json.field("approvalRule", approvalRule)
        json.field("approvalAllowSelf", approvalAllowSelf)
        if let limits {
            json.key("limits")
            json.beginArray()
            for limit in limits {
                json.beginObject()
                json.field("id", limit.id)
                json.field("kind", limit.kind.rawValue)
                json.field("count", limit.count)
                json.field("periodSeconds", limit.periodSeconds)
                json.field("burst", limit.burst)
                json.field("per", limit.per)
                json.endObject()
            }
            json.endArray()
        }
        json.field("maxResultBytes", maxResultBytes)
        json.field("redact", redact)
        json.endObject()
    }
}
