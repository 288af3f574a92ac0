import WardenMCP
import WardenServiceKit

/// Takes the credentials injected into a server out of everything it sends back (results, errors,
/// notifications, progress, its own requests, resource contents) before the gateway does anything
/// else with it. Every string of a message is scanned (keys on their own) in order, with one scan per stream
/// (a process's output, one SSE answer, one event stream), so a value split across strings,
/// messages or events is still found; see `SecretRedactor`.
package struct LeakGuard: Sendable {
    package private(set) var redactor: SecretRedactor
    private var scan = SecretRedactor.Scan()
    /// Where the redactor comes from: a server whose credentials change during a stream (a header
    /// resolved anew) gets the new values scrubbed from the next message on.
    private let credentials: ServerCredentials?
    private var generation: Int

    package init(_ redactor: SecretRedactor) {
        self.redactor = redactor
        self.credentials = nil
        self.generation = 0
    }

    package init(_ credentials: ServerCredentials?) {
        let current = credentials?.redactor ?? (.empty, 0)
        self.redactor = current.redactor
        self.credentials = credentials
        self.generation = current.generation
    }

    /// The message with every known value replaced by `[redacted:<path>]`.
    package mutating func scrub(_ message: JSONRPCMessage) -> JSONRPCMessage {
        if let credentials {
            let current = credentials.redactor
            if current.generation != generation {
                (redactor, generation, scan) = (current.redactor, current.generation, SecretRedactor.Scan())
            }
        }
        guard !redactor.isEmpty else { return message }
        switch message {
        case .request(let id, let method, let params): return .request(id: id, method: method, params: params.map { scrub($0) })
        case .notification(let method, let params): return .notification(method: method, params: params.map { scrub($0) })
        case .result(let id, let result): return .result(id: id, result: scrub(result))
        case .error(let id, var error):
            error.message = scrub(error.message)
            error.data = error.data.map { scrub($0) }
            return .error(id: id, error)
        }
    }

    package mutating func scrub(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(scrub(text))
        case .array(let items): .array(items.map { scrub($0) })
        // A key is looked at on its own: keys between values would break the run of a value that
        // continues from one string to the next.
        case .object(let members): .object(members.map { (key: redactor.redact($0.key) ?? $0.key, value: scrub($0.value)) })
        case .null, .bool, .number: value
        }
    }

    package mutating func scrub(_ text: String) -> String {
        redactor.redact(text, scan: &scan) ?? text
    }
}
