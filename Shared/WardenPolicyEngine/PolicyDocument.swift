import Foundation
import WardenMCP
import Yams

/// A policy as written: YAML, checked field by field (unknown fields are errors, so a typo never
/// silently widens or narrows a policy). Errors name the line, the column and the field.
///
/// ```yaml
/// rules:
///   - id: researchers-read
///     effect: allow                      # allow | deny | approve
///     agents: {classes: [researcher]}    # ids, classes, users, roles, clients; none: every agent
///     tools: [web_search, read_file]     # globs; with "__" the whole namespaced name
///     when:                              # every condition must hold
///       - arg: $.repository
///         glob: "acme/project-*"
/// ```
package struct PolicyDocument: Sendable, Equatable {
    package var rules: [PolicyRule]
    /// Rate limits and quotas (`RateLimit`), admin documents only.
    package var limits: [RateLimit] = []

    static let maximumRules = 10_000
    static let maximumLimits = 1_000
    static let maximumBytes = 4 << 20

    package init(rules: [PolicyRule], limits: [RateLimit] = []) {
        self.rules = rules
        self.limits = limits
    }

    package init(yaml: String) throws(PolicyError) {
        guard yaml.utf8.count <= Self.maximumBytes else {
            throw PolicyError(line: 1, column: 1, field: "", message: "the document is over \(Self.maximumBytes >> 20) MiB")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.syntaxError(error)
        } catch {
            throw PolicyError(line: 1, column: 1, field: "", message: "not YAML")
        }
        guard let root else { throw PolicyError(line: 1, column: 1, field: "", message: "the document is empty: it needs rules") }
        let reader = Reader()
        let top = try reader.mapping(root, "", allowed: ["version", "rules", "limits"])
        if let version = top["version"] {
            guard reader.scalar(version) == "1" else { throw reader.error(version, "version", "the only version is 1") }
        }
        guard let rulesNode = top["rules"] else { throw reader.error(root, "rules", "a policy needs a list of rules (it may be empty: [])") }
        let items = try reader.sequence(rulesNode, "rules")
        guard items.count <= Self.maximumRules else { throw reader.error(rulesNode, "rules", "at most \(Self.maximumRules) rules") }
        var rules: [PolicyRule] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let rule = try reader.rule(item, "rules[\(index)]")
            if let first = seen[rule.id] {
                throw reader.error(item, "rules[\(index)].id", "'\(rule.id)' is already the id of the rule on line \(first)")
            }
            seen[rule.id] = rule.line
            rules.append(rule)
        }
        self.rules = rules
        if let limitsNode = top["limits"] {
            let items = try reader.sequence(limitsNode, "limits")
            guard items.count <= Self.maximumLimits else { throw reader.error(limitsNode, "limits", "at most \(Self.maximumLimits) limits") }
            var named: [String: Int] = [:]
            for rule in rules { if let limit = rule.obligations.rateLimit { named[limit, default: 0] += 1 } }
            var ids: [String: Int] = [:]
            for (index, item) in items.enumerated() {
                var limit = try reader.limit(item, "limits[\(index)]")
                if let first = ids[limit.id] {
                    throw reader.error(item, "limits[\(index)].id", "'\(limit.id)' is already the id of the limit on line \(first)")
                }
                ids[limit.id] = limit.line
                limit.onlyWhenNamed = limit.subjects.isEmpty && limit.tools.isEmpty && named[limit.id] != nil
                limits.append(limit)
            }
        }
        for (index, rule) in rules.enumerated() {
            if let limit = rule.obligations.rateLimit, !limits.contains(where: { $0.id == limit }) {
                throw PolicyError(
                    line: rule.line, column: 1, field: "rules[\(index)].obligations.rateLimit",
                    message: "no limit has the id '\(limit)' (define it under limits:)")
            }
        }
    }

    static func syntaxError(_ error: YamlError) -> PolicyError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return PolicyError(line: mark.line, column: mark.column, field: "", message: "not valid YAML: \(problem)")
        default:
            return PolicyError(line: 1, column: 1, field: "", message: "not valid YAML: \(error)")
        }
    }

    /// Reads nodes into the model, with the position of every error.
    struct Reader {
        func error(_ node: Node, _ field: String, _ message: String) -> PolicyError {
            PolicyError(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, field: field, message: message)
        }

        /// Nodes read so far: aliases let a small document stand for a huge one, so what is read is
        /// bounded (10,000 rules of a few dozen nodes each fit well within).
        let visited = Counter()
        static let maximumNodes = 1_000_000

        final class Counter: @unchecked Sendable {
            var count = 0
        }

        func plain(_ node: Node, _ field: String) throws(PolicyError) {
            visited.count += 1
            guard visited.count <= Self.maximumNodes else {
                throw error(node, field, "the document is too large once its aliases are expanded (over \(Self.maximumNodes) values)")
            }
        }

        func mapping(_ node: Node, _ field: String, allowed: Set<String>) throws(PolicyError) -> [String: Node] {
            try plain(node, field)
            guard case .mapping(let mapping) = node else { throw error(node, field, "expected a mapping (key: value)") }
            var result: [String: Node] = [:]
            for (key, value) in mapping {
                guard let name = key.string else { throw error(key, field, "keys are text") }
                let path = field.isEmpty ? name : "\(field).\(name)"
                guard allowed.contains(name) else {
                    throw error(key, path, "unknown field '\(name)' (expected one of: \(allowed.sorted().joined(separator: ", ")))")
                }
                result[name] = value
            }
            return result
        }

        func sequence(_ node: Node, _ field: String) throws(PolicyError) -> [Node] {
            try plain(node, field)
            guard case .sequence(let items) = node else { throw error(node, field, "expected a list") }
            return Array(items)
        }

        func scalar(_ node: Node) -> String? {
            guard case .scalar(let scalar) = node else { return nil }
            return scalar.string
        }

        func text(_ node: Node, _ field: String) throws(PolicyError) -> String {
            try plain(node, field)
            guard let text = scalar(node) else { throw error(node, field, "expected text") }
            return text
        }

        func texts(_ node: Node, _ field: String) throws(PolicyError) -> [String] {
            var result: [String] = []
            for (index, item) in try sequence(node, field).enumerated() { result.append(try text(item, "\(field)[\(index)]")) }
            return result
        }

        func number(_ node: Node, _ field: String) throws(PolicyError) -> Double {
            guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any, let value = Double(scalar.string),
                value.isFinite
            else { throw error(node, field, "expected a number") }
            return value
        }

        /// A plain scalar as YAML means it (null, true/false, a number, else text); a quoted one is text.
        func value(_ node: Node, _ field: String) throws(PolicyError) -> JSONValue {
            try plain(node, field)
            switch node {
            case .scalar(let scalar):
                guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
                switch scalar.string {
                case "null", "~", "": return .null
                case "true": return .bool(true)
                case "false": return .bool(false)
                default:
                    if let number = Double(scalar.string), number.isFinite, scalar.string.first.map({ $0.isNumber || $0 == "-" }) == true {
                        return .number(scalar.string)
                    }
                    return .string(scalar.string)
                }
            case .sequence(let items):
                var values: [JSONValue] = []
                for (index, item) in items.enumerated() { values.append(try value(item, "\(field)[\(index)]")) }
                return .array(values)
            case .mapping, .alias:
                throw error(node, field, "expected a value")
            }
        }

        func rule(_ node: Node, _ field: String) throws(PolicyError) -> PolicyRule {
            let fields = try mapping(
                node, field,
                allowed: ["id", "layer", "effect", "agents", "tools", "prompts", "resources", "when", "approval", "obligations", "description"])
            guard let idNode = fields["id"] else { throw error(node, "\(field).id", "every rule needs an id") }
            let id = try text(idNode, "\(field).id")
            guard id.wholeMatch(of: /[A-Za-z0-9._-]{1,64}/) != nil else {
                throw error(idNode, "\(field).id", "an id is 1 to 64 letters, digits, '.', '_' or '-'")
            }
            var layer = PolicyRule.Layer.admin
            if let layerNode = fields["layer"] {
                guard let parsed = PolicyRule.Layer(rawValue: try text(layerNode, "\(field).layer")) else {
                    throw error(layerNode, "\(field).layer", "a layer is admin or user")
                }
                layer = parsed
            }
            guard let effectNode = fields["effect"] else {
                throw error(node, "\(field).effect", "every rule needs an effect: allow, deny or approve")
            }
            guard let effect = PolicyRule.Effect(rawValue: try text(effectNode, "\(field).effect")) else {
                throw error(effectNode, "\(field).effect", "an effect is allow, deny or approve")
            }
            guard fields["tools"] != nil || fields["prompts"] != nil || fields["resources"] != nil else {
                throw error(node, "\(field).tools", "every rule names its tools (\"*\" for all), prompts or resources")
            }
            func patterns(_ key: String, _ what: String) throws(PolicyError) -> [String] {
                guard let listNode = fields[key] else { return [] }
                let names = try texts(listNode, "\(field).\(key)")
                guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && $0.count <= 500 }) else {
                    throw error(listNode, "\(field).\(key)", "a non-empty list of \(what) names or patterns")
                }
                return names
            }
            let tools = try patterns("tools", "tool")
            let prompts = try patterns("prompts", "prompt")
            let resources = try patterns("resources", "resource (server+uri)")
            var subjects = PolicyRule.Subjects()
            if let agentsNode = fields["agents"] {
                let who = try mapping(agentsNode, "\(field).agents", allowed: ["ids", "classes", "users", "roles", "clients"])
                subjects.agents = Set(try who["ids"].map { node throws(PolicyError) in try texts(node, "\(field).agents.ids") } ?? [])
                subjects.classes = Set(try who["classes"].map { node throws(PolicyError) in try texts(node, "\(field).agents.classes") } ?? [])
                subjects.users = Set(try who["users"].map { node throws(PolicyError) in try texts(node, "\(field).agents.users") } ?? [])
                subjects.roles = Set(try who["roles"].map { node throws(PolicyError) in try texts(node, "\(field).agents.roles") } ?? [])
                subjects.clients = Set(try who["clients"].map { node throws(PolicyError) in try texts(node, "\(field).agents.clients") } ?? [])
                if subjects.isEmpty { throw error(agentsNode, "\(field).agents", "name some agents, or leave 'agents' out for every agent") }
            }
            var conditions: [RuleCondition] = []
            if let whenNode = fields["when"] {
                for (index, item) in try sequence(whenNode, "\(field).when").enumerated() {
                    conditions.append(try condition(item, "\(field).when[\(index)]"))
                }
            }
            var approval: PolicyRule.Approval?
            if let approvalNode = fields["approval"] {
                guard effect == .approve else { throw error(approvalNode, "\(field).approval", "only an 'approve' rule takes an approval") }
                approval = try self.approval(approvalNode, "\(field).approval")
                approval?.rule = id
            } else if effect == .approve {
                throw error(node, "\(field).approval", "an 'approve' rule says who approves: approval: {roles: [approver]}")
            }
            var obligations = PolicyRule.Obligations()
            if let obligationsNode = fields["obligations"] {
                guard effect != .deny else { throw error(obligationsNode, "\(field).obligations", "a deny rule has nothing to oblige") }
                obligations = try self.obligations(obligationsNode, "\(field).obligations")
            }
            return PolicyRule(
                id: id, layer: layer, effect: effect, subjects: subjects, tools: tools.map { ToolPattern($0) },
                prompts: prompts.map { ToolPattern($0) }, resources: resources.map { ToolPattern($0, whole: true) }, conditions: conditions,
                approval: approval, obligations: obligations, line: node.mark?.line ?? 1)
        }

        func limit(_ node: Node, _ field: String) throws(PolicyError) -> RateLimit {
            let fields = try mapping(node, field, allowed: ["id", "rate", "burst", "quota", "per", "agents", "tools", "description"])
            guard let idNode = fields["id"] else { throw error(node, "\(field).id", "every limit needs an id") }
            let id = try text(idNode, "\(field).id")
            guard id.wholeMatch(of: /[A-Za-z0-9._-]{1,64}/) != nil else {
                throw error(idNode, "\(field).id", "an id is 1 to 64 letters, digits, '.', '_' or '-'")
            }
            let kind: RateLimit.Kind
            switch (fields["rate"], fields["quota"]) {
            case (let rateNode?, nil):
                let periods = ["second": 1, "minute": 60, "hour": 3600, "day": 86400]
                let parts = try text(rateNode, "\(field).rate").split(separator: "/")
                guard parts.count == 2, let count = Int(parts[0]), (1...1_000_000).contains(count), let period = periods[String(parts[1])] else {
                    throw error(rateNode, "\(field).rate", "a rate is COUNT/PERIOD: 1 to 1000000 per second, minute, hour or day (30/minute)")
                }
                var burst = count
                if let burstNode = fields["burst"] {
                    let value = try number(burstNode, "\(field).burst")
                    guard value >= 1, value <= 1_000_000, value == value.rounded() else {
                        throw error(burstNode, "\(field).burst", "a burst is 1 to 1000000 calls")
                    }
                    burst = Int(value)
                }
                // A bucket refills within a day: its state is kept that long.
                guard burst * period / count <= 86400 else {
                    throw error(
                        fields["burst"] ?? rateNode, "\(field).burst", "a full burst must refill within a day (burst × period ÷ count ≤ 1 day)")
                }
                kind = .rate(count: count, periodSeconds: period, burst: burst)
            case (nil, let quotaNode?):
                if let burstNode = fields["burst"] { throw error(burstNode, "\(field).burst", "a quota has no burst (only a rate does)") }
                let parts = try text(quotaNode, "\(field).quota").split(separator: "/")
                guard parts.count == 2, let count = Int(parts[0]), (1...100_000_000).contains(count), parts[1] == "day" else {
                    throw error(quotaNode, "\(field).quota", "a quota is COUNT/day, 1 to 100000000 calls a UTC day (1000/day)")
                }
                kind = .dailyQuota(count: count)
            case (nil, nil): throw error(node, "\(field).rate", "a limit has a rate (30/minute) or a quota (1000/day)")
            case (_?, let quotaNode?): throw error(quotaNode, "\(field).quota", "a limit has a rate or a quota, not both (write two limits)")
            }
            var per: [RateLimit.Dimension] = [.agent]
            if let perNode = fields["per"] {
                per = []
                for (index, item) in try sequence(perNode, "\(field).per").enumerated() {
                    guard let dimension = RateLimit.Dimension(rawValue: try text(item, "\(field).per[\(index)]")) else {
                        throw error(item, "\(field).per[\(index)]", "counted per agent, user, org or tool")
                    }
                    if !per.contains(dimension) { per.append(dimension) }
                }
                if per.isEmpty { throw error(perNode, "\(field).per", "name what is counted: agent, user, org or tool") }
            }
            var subjects = PolicyRule.Subjects()
            if let agentsNode = fields["agents"] {
                let who = try mapping(agentsNode, "\(field).agents", allowed: ["ids", "classes", "users", "roles"])
                subjects.agents = Set(try who["ids"].map { node throws(PolicyError) in try texts(node, "\(field).agents.ids") } ?? [])
                subjects.classes = Set(try who["classes"].map { node throws(PolicyError) in try texts(node, "\(field).agents.classes") } ?? [])
                subjects.users = Set(try who["users"].map { node throws(PolicyError) in try texts(node, "\(field).agents.users") } ?? [])
                subjects.roles = Set(try who["roles"].map { node throws(PolicyError) in try texts(node, "\(field).agents.roles") } ?? [])
                if subjects.isEmpty { throw error(agentsNode, "\(field).agents", "name some agents, or leave 'agents' out for every agent") }
            }
            var tools: [ToolPattern] = []
            if let toolsNode = fields["tools"] {
                let names = try texts(toolsNode, "\(field).tools")
                guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && $0.count <= 200 }) else {
                    throw error(toolsNode, "\(field).tools", "a non-empty list of tool names or patterns (leave it out for every tool)")
                }
                tools = names.map { ToolPattern($0) }
            }
            return RateLimit(
                id: id, kind: kind, per: per.sorted(), subjects: subjects, tools: tools, onlyWhenNamed: false, line: node.mark?.line ?? 1)
        }

        func approval(_ node: Node, _ field: String) throws(PolicyError) -> PolicyRule.Approval {
            let fields = try mapping(node, field, allowed: ["roles", "users", "count", "expires", "selfApproval"])
            let roles = try fields["roles"].map { node throws(PolicyError) in try texts(node, "\(field).roles") } ?? []
            let users = try fields["users"].map { node throws(PolicyError) in try texts(node, "\(field).users") } ?? []
            guard !roles.isEmpty || !users.isEmpty else { throw error(node, field, "name approver roles or users") }
            var count = 1
            if let countNode = fields["count"] {
                let value = try number(countNode, "\(field).count")
                guard value >= 1, value <= 10, value == value.rounded() else { throw error(countNode, "\(field).count", "1 to 10 approvals") }
                count = Int(value)
            }
            var expires = 3600
            if let expiresNode = fields["expires"] {
                guard let seconds = Self.duration(try text(expiresNode, "\(field).expires")), (60...604_800).contains(seconds) else {
                    throw error(expiresNode, "\(field).expires", "a duration from 1m to 7d, like 30m, 2h or 1d")
                }
                expires = seconds
            }
            var allowSelf = false
            if let selfNode = fields["selfApproval"] {
                switch try text(selfNode, "\(field).selfApproval") {
                case "true": allowSelf = true
                case "false": allowSelf = false
                default: throw error(selfNode, "\(field).selfApproval", "true or false: whether the user an agent acts for may approve it")
                }
            }
            return PolicyRule.Approval(roles: roles, users: users, count: count, expiresSeconds: expires, allowSelf: allowSelf)
        }

        func obligations(_ node: Node, _ field: String) throws(PolicyError) -> PolicyRule.Obligations {
            let fields = try mapping(node, field, allowed: ["rateLimit", "redact", "maxResultBytes"])
            var obligations = PolicyRule.Obligations()
            if let limit = fields["rateLimit"] { obligations.rateLimit = try text(limit, "\(field).rateLimit") }
            if let redact = fields["redact"] {
                for (index, item) in try sequence(redact, "\(field).redact").enumerated() {
                    let raw = try text(item, "\(field).redact[\(index)]")
                    do { obligations.redact.append(try JSONPath(raw)) } catch let failure {
                        throw error(item, "\(field).redact[\(index)]", failure.description)
                    }
                }
            }
            if let size = fields["maxResultBytes"] {
                let value = try number(size, "\(field).maxResultBytes")
                guard value >= 1, value <= Double(1 << 30), value == value.rounded() else {
                    throw error(size, "\(field).maxResultBytes", "1 byte to 1 GiB")
                }
                obligations.maxResultBytes = Int(value)
            }
            return obligations
        }

        /// `90s`, `30m`, `2h`, `1d`, or seconds.
        static func duration(_ text: String) -> Int? {
            let units = ["s": 1, "m": 60, "h": 3600, "d": 86400]
            if let seconds = Int(text) { return seconds }
            guard let unit = text.last.flatMap({ units[String($0)] }), let count = Int(text.dropLast()), count >= 0 else { return nil }
            let (seconds, overflow) = count.multipliedReportingOverflow(by: unit)
            return overflow ? nil : seconds
        }

        static let subjects: Set<String> = ["arg", "claim", "principal", "time", "clientAddress"]
        static let tests: Set<String> = ["equals", "in", "prefix", "glob", "regex", "lt", "le", "gt", "ge", "exists"]

        func condition(_ node: Node, _ field: String) throws(PolicyError) -> RuleCondition {
            let fields = try mapping(node, field, allowed: Self.subjects.union(Self.tests))
            let named = fields.keys.filter(Self.subjects.contains)
            guard named.count == 1, let subjectKey = named.first, let subjectNode = fields[subjectKey] else {
                throw error(node, field, "a condition names one of: \(Self.subjects.sorted().joined(separator: ", "))")
            }
            let line = node.mark?.line ?? 1
            let testKeys = fields.keys.filter(Self.tests.contains)
            if subjectKey == "time" {
                guard testKeys.isEmpty else { throw error(node, field, "a time condition is its window: {days, from, to, zone}") }
                let window = try mapping(subjectNode, "\(field).time", allowed: ["days", "from", "to", "zone"])
                let days = try window["days"].map { node throws(PolicyError) in try texts(node, "\(field).time.days") } ?? []
                let from = try window["from"].map { node throws(PolicyError) in try text(node, "\(field).time.from") } ?? "00:00"
                let to = try window["to"].map { node throws(PolicyError) in try text(node, "\(field).time.to") } ?? "24:00"
                let zone = try window["zone"].map { node throws(PolicyError) in try text(node, "\(field).time.zone") } ?? "UTC"
                do {
                    return RuleCondition(subject: .time(try TimeWindow(days: days, from: from, to: to, zone: zone)), test: .window, line: line)
                } catch let invalid {
                    throw error(subjectNode, "\(field).time", invalid.description)
                }
            }
            guard testKeys.count == 1, let testKey = testKeys.first, let testNode = fields[testKey] else {
                throw error(node, field, "a condition has one test: \(Self.tests.sorted().joined(separator: ", "))")
            }
            let subject: RuleCondition.Subject
            switch subjectKey {
            case "arg":
                let raw = try text(subjectNode, "\(field).arg")
                do { subject = .argument(try JSONPath(raw)) } catch let failure { throw error(subjectNode, "\(field).arg", failure.description) }
            case "claim": subject = .claim(try text(subjectNode, "\(field).claim"))
            case "principal":
                guard let principal = RuleCondition.PrincipalField(rawValue: try text(subjectNode, "\(field).principal")) else {
                    throw error(
                        subjectNode, "\(field).principal",
                        "one of: \(RuleCondition.PrincipalField.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                subject = .principal(principal)
            default:
                guard testKey == "in" else { throw error(testNode, "\(field).\(testKey)", "the client address takes 'in' with address ranges") }
                let ranges = try texts(testNode, "\(field).in")
                var parsed: [IPAddressRange] = []
                for (index, range) in ranges.enumerated() {
                    guard let value = IPAddressRange(range) else {
                        throw error(testNode, "\(field).in[\(index)]", "'\(range)' is not an address or CIDR range")
                    }
                    parsed.append(value)
                }
                return RuleCondition(subject: .clientAddress, test: .inRanges(parsed, source: ranges), line: line)
            }
            let path = "\(field).\(testKey)"
            let test: RuleCondition.Test
            switch testKey {
            case "equals": test = .equals(try operand(testNode, path))
            case "in":
                var operands: [RuleCondition.Operand] = []
                for (index, item) in try sequence(testNode, path).enumerated() { operands.append(try operand(item, "\(path)[\(index)]")) }
                test = .oneOf(operands)
            case "prefix", "glob", "regex":
                let pattern = try text(testNode, path)
                guard !pattern.isEmpty else { throw error(testNode, path, "an empty \(testKey) matches everything: write what it should match") }
                switch testKey {
                case "prefix": test = .prefix(pattern)
                case "glob": test = .glob(pattern)
                default:
                    do { test = .regex(try LinearRegex(pattern), source: pattern) } catch let failure {
                        throw error(testNode, path, "the pattern is refused: \(failure.description)")
                    }
                }
            case "lt": test = .lessThan(try number(testNode, path))
            case "le": test = .atMost(try number(testNode, path))
            case "gt": test = .greaterThan(try number(testNode, path))
            case "ge": test = .atLeast(try number(testNode, path))
            default:
                guard let flag = scalar(testNode), flag == "true" || flag == "false" else { throw error(testNode, path, "true or false") }
                test = .exists(flag == "true")
            }
            return RuleCondition(subject: subject, test: test, line: line)
        }

        /// A literal, or `{claim: name}` / `{principal: field}` for a value of the call.
        func operand(_ node: Node, _ field: String) throws(PolicyError) -> RuleCondition.Operand {
            guard case .mapping = node else { return .value(try value(node, field)) }
            let fields = try mapping(node, field, allowed: ["claim", "principal"])
            if let claim = fields["claim"], fields.count == 1 { return .claim(try text(claim, "\(field).claim")) }
            if let principalNode = fields["principal"], fields.count == 1 {
                guard let principal = RuleCondition.PrincipalField(rawValue: try text(principalNode, "\(field).principal")) else {
                    throw error(
                        principalNode, "\(field).principal",
                        "one of: \(RuleCondition.PrincipalField.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return .principal(principal)
            }
            throw error(node, field, "compare with a value, {claim: name} or {principal: field}")
        }
    }
}
