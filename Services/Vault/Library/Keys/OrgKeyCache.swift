import Crypto

/// Unwrapped org keys and each org's current version, kept for `lifetime` so that reads do no
/// provider round trip and no unwrap; dropped whole on any rotation. A value type: the hierarchy
/// holds it under its lock.
struct OrgKeyCache<Instant: InstantProtocol> {
    private struct Entry {
        var key: OrgKey
        var expires: Instant
    }

    let lifetime: Instant.Duration
    private var keys: [String: [Int: Entry]] = [:]
    private var current: [String: (version: Int, expires: Instant)] = [:]

    init(lifetime: Instant.Duration) { self.lifetime = lifetime }

    func key(org: String, version: Int, now: Instant) -> OrgKey? {
        guard let entry = keys[org]?[version], entry.expires > now else { return nil }
        return entry.key
    }

    func currentVersion(of org: String, now: Instant) -> Int? {
        guard let entry = current[org], entry.expires > now else { return nil }
        return entry.version
    }

    mutating func store(_ key: OrgKey, isCurrent: Bool, now: Instant) {
        keys[key.org, default: [:]][key.version] = Entry(key: key, expires: now.advanced(by: lifetime))
        if isCurrent { current[key.org] = (key.version, now.advanced(by: lifetime)) }
    }

    mutating func drop(org: String?) {
        if let org {
            keys[org] = nil
            current[org] = nil
        } else {
            keys.removeAll()
            current.removeAll()
        }
    }

    /// Keys held and not expired.
    func count(now: Instant) -> Int {
        keys.values.reduce(0) { $0 + $1.values.filter { $0.expires > now }.count }
    }
}
