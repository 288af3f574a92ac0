/// The token of an `Authorization: Bearer …` header, read from the header's bytes. Every request
/// does this: Foundation's `trimmingCharacters` (which goes through UTF-16) cost a fifth of the
/// gateway's instructions per proxied call.
enum BearerToken {
    /// The token after the Bearer scheme (any case), without surrounding spaces and tabs (empty
    /// when only spaces follow: refused by whoever checks it); nil when the header does not use
    /// that scheme.
    static func from(_ header: String) -> String? {
        let bytes = header.utf8
        guard bytes.count > 7 else { return nil }
        var index = bytes.startIndex
        for expected in "bearer".utf8 {
            guard bytes[index] | 0x20 == expected else { return nil }
            index = bytes.index(after: index)
        }
        guard bytes[index] == UInt8(ascii: " ") else { return nil }
        var start = bytes.index(after: index), end = bytes.endIndex
        while start < end, isSpace(bytes[start]) { start = bytes.index(after: start) }
        while end > start, isSpace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return String(header[start..<end])
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
