/// What a sink's cursor becomes after one round of delivery, decided from how the round went and
/// nothing else (no clock, no I/O): the relay performs it. A sink is never given up on: records stay
/// in the chain, so a sink that is down for a day gets them all, in order, once it answers again;
/// meanwhile it is tried again after 1, 2, 4 … seconds, at most every `maximumBackoff`.
struct AuditSinkSchedule {
    /// A sink that is up to date is asked about again after this long.
    static let idle = Duration.seconds(1)
    static let maximumBackoff = Duration.seconds(300)

    struct Cursor: Equatable {
        /// The last position the sink acknowledged.
        var deliveredThrough: Int64
        /// Failed rounds since it last acknowledged one.
        var attempts: Int
    }

    enum Round: Equatable {
        /// The chain holds nothing after the cursor.
        case nothingNew
        /// The sink acknowledged records through this position; `more` waits after them.
        case delivered(through: Int64, more: Bool)
        /// The records could not be read or the sink did not acknowledge them.
        case failed(Failure)
    }

    enum Failure: Equatable, CustomStringConvertible {
        /// The audit service or the vault did not answer.
        case recordsUnavailable
        case endpoint(WebhookPoster.Outcome)

        var description: String {
            switch self {
            case .recordsUnavailable: "the records or the sink's settings cannot be read now"
            case .endpoint(let outcome): "\(outcome)"
            }
        }
    }

    struct Update: Equatable {
        var cursor: Cursor
        /// Until the next round.
        var delay: Duration
        /// nil: cleared.
        var lastError: String?
        /// Whether the sink acknowledged something this round.
        var delivered: Bool
    }

    static func next(after round: Round, from cursor: Cursor) -> Update {
        switch round {
        case .nothingNew:
            return Update(cursor: Cursor(deliveredThrough: cursor.deliveredThrough, attempts: 0), delay: idle, lastError: nil, delivered: false)
        case .delivered(let through, let more):
            return Update(
                cursor: Cursor(deliveredThrough: max(through, cursor.deliveredThrough), attempts: 0), delay: more ? .zero : idle, lastError: nil,
                delivered: true)
        case .failed(let failure):
            let attempts = cursor.attempts + 1
            return Update(
                cursor: Cursor(deliveredThrough: cursor.deliveredThrough, attempts: attempts), delay: backoff(attempts: attempts),
                lastError: failure.description, delivered: false)
        }
    }

    /// 1, 2, 4 … seconds after the first, second, third … failure, at most `maximumBackoff`.
    static func backoff(attempts: Int) -> Duration {
        let seconds = Int64(1) << Int64(min(max(attempts - 1, 0), 20))
        return min(.seconds(seconds), maximumBackoff)
    }
}
