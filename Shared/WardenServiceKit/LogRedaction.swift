import Logging
import Synchronization

/// Secret values this process holds in the clear (credentials the gateway resolved), taken out of
/// every log event before it is written: its message and its metadata.
public enum LogRedaction {
    private struct State {
        /// Value → label, and the values in the order they were added.
        var known: [String: String] = [:]
        var order: [String] = []
        var redactor = SecretRedactor.empty
        var generation = 0
        var installed = 0
    }

    private static let state = Mutex(State())

    /// Adds values to redact (keyed by value, labelled by where they came from). With
    /// `keepingPerLabel`, only that many of the newest values of each label added stay: values that
    /// are replaced all the time (OAuth access tokens) do not pile up. The redactor is built outside
    /// the lock.
    public static func add(_ secrets: [(label: String, value: String)], keepingPerLabel limit: Int? = nil) {
        let change = state.withLock { state -> (known: [String: String], generation: Int)? in
            var changed = false
            for secret in secrets where secret.value.utf8.count >= SecretRedactor.minimumSecretBytes && state.known[secret.value] == nil {
                state.known[secret.value] = secret.label
                state.order.append(secret.value)
                changed = true
            }
            if let limit {
                for label in Set(secrets.map(\.label)) {
                    let values = state.order.filter { state.known[$0] == label }
                    for old in values.dropLast(limit) {
                        state.known[old] = nil
                        changed = true
                    }
                }
                state.order.removeAll { state.known[$0] == nil }
            }
            guard changed else { return nil }
            state.generation += 1
            return (state.known, state.generation)
        }
        guard let change else { return }
        let redactor = SecretRedactor(secrets: change.known.map { (label: $0.value, value: $0.key) })
        state.withLock { state in
            // Builds may finish out of order: a newer one is never replaced by an older one.
            if change.generation > state.installed {
                state.redactor = redactor
                state.installed = change.generation
            }
        }
    }

    static var redactor: SecretRedactor { state.withLock { $0.redactor } }
}
