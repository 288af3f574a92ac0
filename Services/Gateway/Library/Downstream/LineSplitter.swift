/// Splits a byte stream into newline-terminated lines with a hard length limit, so that a server
/// cannot make the gateway buffer without bound. A value type without I/O.
struct LineSplitter {
    enum Output: Equatable {
        case line([UInt8])
        /// A line passed the limit; the stream is unusable from here on.
        case tooLong
    }

    let maximumLength: Int
    private var pending: [UInt8] = []
    private var failed = false

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    /// Feeds bytes; returns the complete lines (without `\n` or a trailing `\r`), empty lines skipped.
    /// Each line's bytes are copied in runs up to its newline, not byte by byte.
    mutating func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [Output] {
        guard !failed else { return [] }
        var lines: [Output] = []
        var rest = bytes[...]
        while !rest.isEmpty {
            let newline = rest.firstIndex(of: 0x0A)
            pending.append(contentsOf: rest[..<(newline ?? rest.endIndex)])
            if pending.count > maximumLength {
                failed = true
                pending = []
                lines.append(.tooLong)
                return lines
            }
            guard let newline else { break }
            if pending.last == 0x0D { pending.removeLast() }
            if !pending.isEmpty { lines.append(.line(pending)) }
            pending.removeAll(keepingCapacity: true)
            rest = rest[rest.index(after: newline)...]
        }
        return lines
    }
}
