import Synchronization

/// Runs one piece of work per key at a time: whoever asks while it runs waits for its result instead
/// of doing it again (a token refresh asked for by a burst of calls happens once).
package final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let waiting = Mutex<[Key: [CheckedContinuation<Result<Value, any Error>?, Never>]]>([:])

    package init() {}

    package func run(_ key: Key, _ work: () async throws -> Value) async throws -> Value {
        // Joining and leading are decided under one lock: a follower is either registered before the
        // leader collects its followers, or becomes the leader itself.
        let followed = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, any Error>?, Never>) in
            let leads = waiting.withLock { waiting -> Bool in
                guard waiting[key] != nil else {
                    waiting[key] = []
                    return true
                }
                waiting[key]?.append(continuation)
                return false
            }
            if leads { continuation.resume(returning: nil) }
        }
        if let followed { return try followed.get() }
        let result: Result<Value, any Error>
        do { result = .success(try await work()) } catch { result = .failure(error) }
        let followers = waiting.withLock { $0.removeValue(forKey: key) ?? [] }
        for follower in followers { follower.resume(returning: result) }
        return try result.get()
    }

    /// Whether `count` callers wait on the run of `key` (tests).
    func hasFollowers(_ key: Key, count: Int) -> Bool { waiting.withLock { ($0[key]?.count ?? 0) >= count } }
}
