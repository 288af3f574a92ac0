import HTTPTypes

extension HTTPFields {
    /// The field's value, as `self[name]` gives it: nil when absent, the values joined when the
    /// field is repeated. A field sent once (nearly always) is returned as it is, without that
    /// subscript's generic join, which cost 2,800 to 5,000 instructions a present field and ran
    /// several times on every proxied call (callgrind, `BENCHMARKS.md`).
    package func value(_ name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            guard found == nil else { return self[name] }
            found = field.value
        }
        return found
    }
}
