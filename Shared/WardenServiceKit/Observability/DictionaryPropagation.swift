import Tracing

/// Writes trace context into a `[String: String]` (NATS headers, a message's `_meta`).
package struct DictionaryInjector: Injector {
    package init() {}
    package func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// Reads trace context from a `[String: String]`.
package struct DictionaryExtractor: Extractor {
    package init() {}
    package func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
