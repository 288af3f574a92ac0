import WardenMCP

/// The members of a JSON object, read as Codable's synthesized decoding reads them: a missing or
/// `null` optional member is nil, unknown members are ignored, and anything else that does not fit
/// throws (`HandWrittenJSON` readers then leave the document to Codable, which accepts or refuses it
/// as it always did).
struct JSONFields {
    struct Mismatch: Error {}

    let members: [(key: String, value: JSONValue)]

    init(_ value: JSONValue?) throws(Mismatch) {
        guard let members = value?.objectMembers else { throw Mismatch() }
        self.members = members
    }

    private func value(_ key: String) -> JSONValue? {
        guard let value = members.first(where: { $0.key == key })?.value, value != .null else { return nil }
        return value
    }

    func string(_ key: String) throws(Mismatch) -> String {
        guard let value = try optionalString(key) else { throw Mismatch() }
        return value
    }

    func optionalString(_ key: String) throws(Mismatch) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw Mismatch() }
        return text
    }

    func int(_ key: String) throws(Mismatch) -> Int {
        guard let value = try optionalInt(key) else { throw Mismatch() }
        return value
    }

    func optionalInt(_ key: String) throws(Mismatch) -> Int? {
        guard let value = value(key) else { return nil }
        return try Self.int(value)
    }

    func bool(_ key: String) throws(Mismatch) -> Bool {
        guard let value = try optionalBool(key) else { throw Mismatch() }
        return value
    }

    func optionalBool(_ key: String) throws(Mismatch) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else { throw Mismatch() }
        return flag
    }

    func strings(_ key: String) throws(Mismatch) -> [String] {
        guard let values = try optionalStrings(key) else { throw Mismatch() }
        return values
    }

    func optionalStrings(_ key: String) throws(Mismatch) -> [String]? {
        guard let elements = try optionalArray(key) else { return nil }
        return try elements.map { element throws(Mismatch) in
            guard case .string(let text) = element else { throw Mismatch() }
            return text
        }
    }

    func ints(_ key: String) throws(Mismatch) -> [Int] {
        guard let elements = try optionalArray(key) else { throw Mismatch() }
        return try elements.map { element throws(Mismatch) in try Self.int(element) }
    }

    func optionalArray(_ key: String) throws(Mismatch) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let elements) = value else { throw Mismatch() }
        return elements
    }

    func optionalStringDictionary(_ key: String) throws(Mismatch) -> [String: String]? {
        guard let value = value(key) else { return nil }
        guard case .object(let members) = value else { throw Mismatch() }
        var dictionary: [String: String] = [:]
        for member in members {
            guard case .string(let text) = member.value else { throw Mismatch() }
            dictionary[member.key] = text
        }
        return dictionary
    }

    /// Dates are left to Codable (its `.iso8601` reading is the reference).
    func absentDate(_ key: String) throws(Mismatch) {
        if value(key) != nil { throw Mismatch() }
    }

    /// An integer written as one (no fraction or exponent, within `Int`).
    static func int(_ value: JSONValue) throws(Mismatch) -> Int {
        guard case .number(let text) = value, let number = Int(text) else { throw Mismatch() }
        return number
    }
}
