/// Bytes as lowercase hexadecimal, two digits each: digests, ids. One table lookup per digit
/// (`String(_:radix:)` per byte cost the gateway thousands of instructions per call).
package enum LowercaseHex {
    package static func string(_ bytes: some Sequence<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(max(64, bytes.underestimatedCount * 2))
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)
}
