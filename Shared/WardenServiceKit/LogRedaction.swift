import Logging
import Synchronization

/// Secret values this process holds in the clear (credentials the gateway resolved), taken out of
/// every log event before it is written: its message and its metadata.
public enum LogRedaction {
    private static let state = Mutex<(known: [String: String], redactor: SecretRedactor)>(([:], .empty))

    /// Adds values to redact (keyed by value, labelled by where they came from). The redactor is
    /// built outside the lock; whichever build covers more values is kept.
    public static func add(_ secrets: [(label: String, value: String)]) {
        let known = state.withLock { state -> [String: String]? in
            var known = state.known
            for secret in secrets where secret.value.utf8.count >= SecretRedactor.minimumSecretBytes {
                known[secret.value] = known[secret.value] ?? secret.label
            }
            guard known.count > state.known.count else { return nil }
            state.known = known
            return known
        }
        guard let known else { return }
        let redactor = SecretRedactor(secrets: known.map { (label: $0.value, value: $0.key) })
        state.withLock { state in
            // A later add may have finished first: never replace a build that knows more.
            if state.known.count == known.count { state.redactor = redactor }
        }
    }

    static var redactor: SecretRedactor { state.withLock { $0.redactor } }
}
