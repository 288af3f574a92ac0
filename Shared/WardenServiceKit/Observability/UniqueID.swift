import Synchronization

/// Ids that must be unique, not secret (audit event ids, request ids), in the form of a lowercase
/// UUID: a process-wide random 64-bit salt and SplitMix64 over an atomic counter that starts at a
/// random value. One atomic add an id, where `UUID()` costs a `getrandom` system call and a
/// Foundation string (measured: about 1% of an audited gateway's CPU). Within a process the counter
/// half never repeats before 2^64 ids; across processes the random salt and start keep them apart.
package enum UniqueID {
    private static let salt = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))
    private static let hex = Array("0123456789abcdef".utf8)

    package static func make() -> String {
        var z = counter.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    if index == 8 || index == 13 || index == 18 || index == 23 {
                        buffer[index] = UInt8(ascii: "-")
                        index += 1
                    }
                    buffer[index] = hex[Int((value >> UInt64(shift)) & 0xF)]
                    index += 1
                }
            }
            put(salt, nibbles: 16)
            put(z, nibbles: 16)
            return index
        }
    }
}
