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
    mutating func feed(_ bytes: some Collection<UInt8>) -> [Output] {
        guard !failed else { return [] }
        var lines: [Output] = []
        for byte in bytes {
            if byte == 0x0A {
                if pending.last == 0x0D { pending.removeLast() }
                if !pending.isEmpty { lines.append(.line(pending)) }
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
                if pending.count > maximumLength {
                    failed = true
                    pending = []
                    lines.append(.tooLong)
                    return lines
                }
            }
        }
        return lines
    }
}
