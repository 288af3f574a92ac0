import WardenContracts

/// One step of a limit's count, without I/O: given what the shared store holds and the time (in
/// microseconds), admit the call (and what to store) or refuse it (and when to retry).
///
/// A rate is a token bucket kept as one number, the generic cell rate algorithm's theoretical
/// arrival time (TAT): each call moves it `interval` later; a call is refused when that would put
/// it more than `burst` intervals ahead of now. A TAT further ahead than one full bucket (left by a
/// slower limit of the same id that an admin since changed) counts as a full bucket. A quota is a
/// count per UTC day (the day is part of the key).
enum LimitArithmetic {
    enum Step: Equatable {
        case admit(store: Int64)
        case refuse(retryAfterMicroseconds: Int64)
    }

    static let dayMicroseconds: Int64 = 86_400_000_000

    static func step(_ limit: CallLimit, stored: Int64?, now: Int64) -> Step {
        switch limit.kind {
        case .rate:
            let interval = max(1, Int64(limit.periodSeconds) * 1_000_000 / Int64(max(1, limit.count)))
            let window = interval * Int64(max(1, limit.burst))
            let tat = min(max(stored ?? now, now), now + window)
            let next = tat + interval
            if next - now > window { return .refuse(retryAfterMicroseconds: next - now - window) }
            return .admit(store: next)
        case .quota:
            let used = stored ?? 0
            if used >= Int64(limit.count) { return .refuse(retryAfterMicroseconds: dayMicroseconds - now % dayMicroseconds) }
            return .admit(store: used + 1)
        }
    }

    /// The UTC day of `now` (days since 1970), part of a quota's key.
    static func day(_ now: Int64) -> Int64 { now / dayMicroseconds }
}
