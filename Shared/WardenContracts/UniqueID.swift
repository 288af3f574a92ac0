import Foundation
import Synchronization

/// Ids that must be unique, not secret (audit event ids, request ids): lowercase UUIDs of version 7
/// (RFC 9562), so that they sort by the millisecond they were made in. The audit store indexes every
/// event id; ids that rise with time are appended at the index's right edge instead of landing on a
/// random page of it (measured in BENCHMARKS.md: in PostgreSQL alone, inserts with random ids took
/// 27% longer and left a larger index). After the 48 bits of time come the version, the variant and 74 bits: SplitMix64 over an
/// atomic counter that starts at a random value (all 64 bits: within a process no id repeats before
/// 2^64 ids, whatever the clock does) and 10 bits of a random per-process salt. One atomic add an id,
/// where `UUID()` costs a `getrandom` system call and a Foundation string. Never use one as a secret:
/// it shows the time it was made, and SplitMix64's mix can be undone, so one id tells the next.
package enum UniqueID {
    private static let salt = UInt64.random(in: .min ... .max) & 0x3FF
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))
    private static let hex = Array("0123456789abcdef".utf8)

    package static func make() -> String { make(at: Date()) }

    /// The id of something that happened at `time` (an event's id sorts with its time).
    package static func make(at time: Date) -> String {
        let milliseconds = time.timeIntervalSince1970 * 1_000
        // A time outside 1970 ... 10889 (48 bits of milliseconds) is clamped rather than trapped on.
        return make(unixMilliseconds: milliseconds.isNaN ? 0 : UInt64(min(max(0, milliseconds), Double(1 << 48 - 1))))
    }

    /// The id for a time given in milliseconds since 1970 (its lowest 48 bits).
    package static func make(unixMilliseconds: UInt64) -> String {
        var z = counter.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return format(unixMilliseconds: unixMilliseconds, mixed: z, salt: salt)
    }

    /// time (48 bits) · version 7 · `mixed`'s top 12 bits | variant 0b10 · `mixed`'s low 52 bits · `salt` (10 bits)
    static func format(unixMilliseconds: UInt64, mixed z: UInt64, salt: UInt64) -> String {
        let high = (unixMilliseconds & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | z >> 52
        let low = 0x8000_0000_0000_0000 | (z & 0x000F_FFFF_FFFF_FFFF) << 10 | salt & 0x3FF
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64) {
                for shift in stride(from: 60, through: 0, by: -4) {
                    if index == 8 || index == 13 || index == 18 || index == 23 {
                        buffer[index] = UInt8(ascii: "-")
                        index += 1
                    }
                    buffer[index] = hex[Int((value >> UInt64(shift)) & 0xF)]
                    index += 1
                }
            }
            put(high)
            put(low)
            return index
        }
    }
}
