/// What a rule or a decision is about.
package enum ItemKind: String, Sendable, Hashable, CaseIterable {
    case tool, prompt, resource

    /// As a `PolicyQuestion` or `PolicyListing` says it (tools are the default: nil).
    package var question: String? { self == .tool ? nil : rawValue }
}
