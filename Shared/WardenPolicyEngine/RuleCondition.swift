import Foundation
import WardenMCP

/// One condition of a rule: a value of the call (an argument, a claim, the principal, the time, the
/// client's address) and a test on it.
package struct RuleCondition: Sendable, Equatable, CustomStringConvertible {
    package enum PrincipalField: String, Sendable, Equatable, CaseIterable {
        case org, agent, `class`, user, roles, scopes, client
    }

    package enum Subject: Sendable, Equatable {
        case argument(JSONPath)
        case claim(String)
        case principal(PrincipalField)
        case time(TimeWindow)
        case clientAddress
    }

    /// A value to compare with: written in the policy, or taken from the call.
    package enum Operand: Sendable, Equatable {
        case value(JSONValue)
        case claim(String)
        case principal(PrincipalField)
    }

    package enum Test: Sendable, Equatable {
        case equals(Operand)
        case oneOf([Operand])
        case prefix(String)
        case glob(String)
        case regex(LinearRegex, source: String)
        case lessThan(Double)
        case atMost(Double)
        case greaterThan(Double)
        case atLeast(Double)
        case exists(Bool)
        case inRanges([IPAddressRange], source: [String])
        /// A time window holds or not; nothing to compare.
        case window
    }

    package var subject: Subject
    package var test: Test
    package var line: Int

    /// Whether the condition reads the call itself (arguments, time, address): a decision that used
    /// it holds for that call only.
    var dependsOnCall: Bool {
        switch subject {
        case .argument, .time, .clientAddress: true
        case .claim, .principal: false
        }
    }

    /// Whether the condition holds for `input`. What cannot be known (a claim the gateway does not
    /// pass, a text too long to match) and lists are read the safe way for the rule: a condition of
    /// a deny rule holds unless it surely does not, one of an allow rule only if it surely does (on a
    /// list, for every element).
    func holds(_ input: DecisionInput, denying: Bool) -> Bool {
        switch (subject, test) {
        case (.time(let window), _): return window.contains(input.time)
        case (.clientAddress, .inRanges(let ranges, _)):
            guard let address = input.clientAddress, let bytes = IPAddressRange.bytes(address) else { return denying }
            return ranges.contains { $0.contains(bytes) }
        default: break
        }
        if !input.claimsKnown, readsClaims { return denying }
        // A claim the user does not have (an attribute nobody set) is unknown too, except to `exists`.
        if case .exists = test {} else if claimsRead.contains(where: { input.claims[$0] == nil }) { return denying }
        if case .principal(.client) = subject, input.client == nil { return denying }
        let value = Self.value(of: subject, in: input)
        func each(_ test: (JSONValue) -> Bool?) -> Bool {
            guard let value else { return false }
            let items: [JSONValue]
            if case .array(let elements) = value { items = elements } else { items = [value] }
            guard !items.isEmpty else { return false }
            let results = items.map { test($0) ?? denying }
            return denying ? results.contains(true) : results.allSatisfy { $0 }
        }
        switch test {
        case .exists(let expected): return (value != nil && value != .null) == expected
        case .equals(let operand): return each { Self.equal($0, Self.resolve(operand, input)) }
        case .oneOf(let operands): return each { item in operands.contains { Self.equal(item, Self.resolve($0, input)) } }
        case .prefix(let prefix): return each { $0.stringValue?.hasPrefix(prefix) ?? false }
        case .glob(let pattern): return each { $0.stringValue.map { ToolPattern.glob(pattern, $0) } ?? false }
        case .regex(let regex, _): return each { item in item.stringValue.map { regex.matchesIfDecidable($0) } ?? false }
        case .lessThan(let bound): return each { $0.numberValue.map { $0 < bound } ?? false }
        case .atMost(let bound): return each { $0.numberValue.map { $0 <= bound } ?? false }
        case .greaterThan(let bound): return each { $0.numberValue.map { $0 > bound } ?? false }
        case .atLeast(let bound): return each { $0.numberValue.map { $0 >= bound } ?? false }
        case .inRanges, .window: return false
        }
    }

    /// Whether the condition reads a claim (as its subject or in what it compares with).
    /// The claims the condition compares (its subject's and its operands').
    var claimsRead: [String] {
        var names: [String] = []
        if case .claim(let name) = subject { names.append(name) }
        func add(_ operand: Operand) { if case .claim(let name) = operand { names.append(name) } }
        switch test {
        case .equals(let operand): add(operand)
        case .oneOf(let operands): operands.forEach(add)
        default: break
        }
        return names
    }

    var readsClaims: Bool {
        if case .claim = subject { return true }
        func reads(_ operand: Operand) -> Bool {
            if case .claim = operand { return true }
            return false
        }
        switch test {
        case .equals(let operand): return reads(operand)
        case .oneOf(let operands): return operands.contains(where: reads)
        default: return false
        }
    }

    static func value(of subject: Subject, in input: DecisionInput) -> JSONValue? {
        switch subject {
        case .argument(let path): path.value(in: input.arguments)
        case .claim(let name): input.claims[name]
        case .principal(let field): principal(field, input)
        case .time, .clientAddress: nil
        }
    }

    static func principal(_ field: PrincipalField, _ input: DecisionInput) -> JSONValue? {
        switch field {
        case .org: .string(input.org)
        case .agent: .string(input.agent)
        case .class: .string(input.agentClass)
        case .user: .string(input.user)
        case .roles: .array(input.roles.sorted().map(JSONValue.string))
        case .scopes: .array(input.scopes.sorted().map(JSONValue.string))
        case .client: input.client.map(JSONValue.string)
        }
    }

    static func resolve(_ operand: Operand, _ input: DecisionInput) -> JSONValue? {
        switch operand {
        case .value(let value): value
        case .claim(let name): input.claims[name]
        case .principal(let field): principal(field, input)
        }
    }

    /// Equal as JSON values, numbers by value (`1` equals `1.0`); a missing side equals nothing.
    static func equal(_ a: JSONValue, _ b: JSONValue?) -> Bool {
        guard let b else { return false }
        if let x = a.numberValue, let y = b.numberValue { return x == y }
        return a == b
    }

    package var description: String {
        let subjectText: String =
            switch subject {
            case .argument(let path): "argument \(path)"
            case .claim(let name): "claim \(name)"
            case .principal(let field): "principal \(field.rawValue)"
            case .time: "the time"
            case .clientAddress: "the client address"
            }
        let testText: String =
            switch test {
            case .equals(let operand): "equals \(Self.describe(operand))"
            case .oneOf(let operands): "is one of [\(operands.map(Self.describe).joined(separator: ", "))]"
            case .prefix(let prefix): "starts with \"\(prefix)\""
            case .glob(let pattern): "matches \"\(pattern)\""
            case .regex(_, let source): "matches /\(source)/"
            case .lessThan(let bound): "< \(bound)"
            case .atMost(let bound): "<= \(bound)"
            case .greaterThan(let bound): "> \(bound)"
            case .atLeast(let bound): ">= \(bound)"
            case .exists(let expected): expected ? "exists" : "is absent"
            case .inRanges(_, let source): "is in \(source.joined(separator: ", "))"
            case .window: "is in the window"
            }
        return "\(subjectText) \(testText) (line \(line))"
    }

    static func describe(_ operand: Operand) -> String {
        switch operand {
        case .value(let value): String(decoding: value.serialized(), as: UTF8.self)
        case .claim(let name): "claim \(name)"
        case .principal(let field): "principal \(field.rawValue)"
        }
    }
}

extension JSONValue {
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var numberValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }
}
