import Foundation

/// Bytes as lowercase hexadecimal, two digits each: digests, ids. The bytes are read in place: taken
/// as a `Sequence` across modules (as they were) a 32-byte digest was read byte by byte through its
/// generic subscript, about 15,000 instructions, once an audit batch in the gateway and once a
/// record in the audit service.
package enum LowercaseHex {
    package static func string(_ bytes: some ContiguousBytes) -> String {
        bytes.withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: bytes.count * 2) { text in
                for (index, byte) in bytes.enumerated() {
                    text[2 * index] = digit(byte >> 4)
                    text[2 * index + 1] = digit(byte & 0x0F)
                }
                return bytes.count * 2
            }
        }
    }

    private static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
    }
}
