import Crypto
import Foundation
import Logging
import Synchronization
import WardenContracts
import WardenNATS

/// Counts calls against their limits in a NATS key-value bucket every gateway replica shares, so
/// two replicas never give twice the allowance: each count is a compare-and-set on the key's
/// revision, retried when another replica wrote first. What this replica last wrote is remembered,
/// so an uncontended count is one write. The tolerance is the gateways' clock skew (it shifts when
/// a bucket refills, never how many calls it holds) and calls that one limit admitted and a later
/// limit refused (they count against the first).
package final class RateLimiter: Sendable {
    package static let bucketName = "warden_gateway_limits"

    package enum Admission: Sendable, Equatable {
        case admitted
        case limited(limit: String, retryAfterSeconds: Int)
        /// The shared count could not be read or written: the call is refused (fail closed).
        case unavailable
    }

    let connection: NATSConnection?
    let logger: Logger
    private let bucket = Mutex<NATSKeyValueBucket?>(nil)
    /// What this replica last wrote per key: (value, revision).
    private let written = Mutex<[String: (value: Int64, revision: UInt64)]>([:])
    /// Keys remembered; past it the memory starts again.
    static let maximumRemembered = 50_000
    /// Writes tried per count before giving up (each lost race means another replica counted).
    static let attempts = 8

    package init(connection: NATSConnection?, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Counts one call of `tool` by `agent` (acting for `user` in `org`) against each limit.
    package func admit(_ limits: [CallLimit], org: String, agent: String, user: String?, tool: String, now: Date = Date()) async -> Admission {
        guard !limits.isEmpty else { return .admitted }
        let microseconds = Int64((now.timeIntervalSince1970 * 1_000_000).rounded(.down))
        let store: NATSKeyValueBucket
        do { store = try await self.store() } catch {
            logger.error("rate limits cannot be counted; the call is refused", metadata: ["error": "\(error)"])
            return .unavailable
        }
        for limit in limits {
            let key = Self.key(limit, org: org, agent: agent, user: user, tool: tool, now: microseconds)
            do {
                if let retry = try await count(limit, key: key, in: store, now: microseconds) {
                    return .limited(limit: limit.id, retryAfterSeconds: Int((Double(retry) / 1_000_000).rounded(.up)))
                }
            } catch {
                logger.error("a rate limit cannot be counted; the call is refused", metadata: ["limit": "\(limit.id)", "error": "\(error)"])
                return .unavailable
            }
        }
        return .admitted
    }

    /// Counts the call; the microseconds to wait when it is refused.
    private func count(_ limit: CallLimit, key: String, in store: NATSKeyValueBucket, now: Int64) async throws -> Int64? {
        var known = written.withLock { $0[key] }
        for _ in 0..<Self.attempts {
            if known == nil, let entry = try await store.get(key) {
                known = (Int64(String(decoding: entry.value, as: UTF8.self)) ?? 0, entry.revision)
            }
            switch LimitArithmetic.step(limit, stored: known?.value, now: now) {
            case .refuse(let retry): return retry
            case .admit(let value):
                do {
                    let payload = Data(String(value).utf8)
                    let revision =
                        if let known { try await store.update(key, payload, expectedRevision: known.revision) } else {
                            try await store.create(key, payload)
                        }
                    written.withLock { written in
                        if written.count >= Self.maximumRemembered { written.removeAll(keepingCapacity: true) }
                        written[key] = (value, revision)
                    }
                    return nil
                } catch let error as NATSError where error.code == .keyConflict {
                    known = nil  // another replica counted first: read what it wrote and try again
                }
            }
        }
        throw Contention(limit: limit.id)
    }

    /// The bucket's key for this call's count: the limit, its kind and the values it is counted
    /// per (and the UTC day, for a quota), hashed so any id is a valid key.
    static func key(_ limit: CallLimit, org: String, agent: String, user: String?, tool: String, now: Int64) -> String {
        var parts = [org, limit.id, limit.kind.rawValue]
        for dimension in limit.per {
            switch dimension {
            case "agent": parts.append("agent=\(agent)")
            case "user": parts.append("user=\(user ?? "agent:" + agent)")
            case "tool": parts.append("tool=\(tool)")
            default: parts.append(dimension)
            }
        }
        if limit.kind == .quota { parts.append("day=\(LimitArithmetic.day(now))") }
        let digest = SHA256.hash(data: Data(parts.joined(separator: "\u{1F}").utf8))
        return "l." + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Every compare-and-set lost: the count changed under us `attempts` times running.
    struct Contention: Error, CustomStringConvertible {
        var limit: String
        var description: String { "the count of limit \(limit) kept changing under us" }
    }

    private func store() async throws -> NATSKeyValueBucket {
        if let bucket = bucket.withLock({ $0 }) { return bucket }
        guard let connection else { throw NATSError(.connectionClosed, "no NATS connection") }
        // Two days: a bucket refills within one (checked when the policy is applied), a quota
        // counts one UTC day.
        let created = try await connection.keyValueBucket(KeyValueBucketSpec(name: Self.bucketName, history: 1, ttl: .seconds(2 * 86400)))
        bucket.withLock { $0 = created }
        return created
    }
}
