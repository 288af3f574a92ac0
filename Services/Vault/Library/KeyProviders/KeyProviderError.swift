/// A key provider cannot be configured or reached, or refused an operation. Names the provider and
/// the cause; never carries key material.
package struct KeyProviderError: Error, CustomStringConvertible {
    package var provider: String
    package var message: String

    package init(provider: String, _ message: String) {
        self.provider = provider
        self.message = message
    }

    package var description: String { "key provider '\(provider)': \(message)" }
}
