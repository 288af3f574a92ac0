import Foundation

/// Replaces known secret values in text with `[redacted:<label>]`, in one pass that is linear in the
/// text's length however many secrets it knows (an Aho–Corasick automaton over bytes).
///
/// Each secret is searched in the forms a program might give it back: as it is, JSON-escaped
/// (also with `\/`), base64 and base64url (at every byte alignment, so a value inside a longer
/// encoded blob is found too), lower- and upper-case hex, and percent-encoded. A `Scan` carries the
/// automaton's state from one text to the next, so a value split across strings, messages or
/// events is found where it completes; a text that ends in the first `minimumHeldPrefix` or more
/// bytes of a secret loses that tail too (what follows may complete it, and what was sent cannot be
/// taken back).
public struct SecretRedactor: Sendable {
    /// Values shorter than this are not secrets anyone can find reliably; the vault refuses them.
    public static let minimumSecretBytes = 8
    /// A text's tail that begins a secret is redacted from this many bytes on.
    public static let minimumHeldPrefix = 4

    /// Finds whole values, and the prefix of one that a text ends with.
    private let forward: Automaton
    /// Runs over a text's first bytes backwards: finds the suffix of a value that a text starts with.
    private let backward: Automaton
    private let labels: [String]
    private let longestPattern: Int

    /// Where one stream of texts stands (state carried from text to text).
    public struct Scan: Sendable {
        var state: Int32 = 0
        public init() {}
    }

    public static let empty = SecretRedactor(secrets: [])

    public var isEmpty: Bool { labels.isEmpty }

    /// - Parameter secrets: each value with the label its marker shows (a secret's path, never its
    ///   value). Values shorter than `minimumSecretBytes` are ignored.
    public init(secrets: [(label: String, value: String)]) {
        var patterns: [(bytes: [UInt8], label: Int32)] = []
        var labels: [String] = []
        for secret in secrets where secret.value.utf8.count >= Self.minimumSecretBytes {
            let label = Int32(labels.count)
            labels.append(secret.label)
            for form in Self.forms(of: Array(secret.value.utf8)) where form.count >= Self.minimumSecretBytes {
                patterns.append((form, label))
            }
        }
        self.labels = labels
        self.longestPattern = patterns.map(\.bytes.count).max() ?? 0
        self.forward = Automaton(patterns)
        self.backward = Automaton(patterns.map { (Array($0.bytes.reversed()), $0.label) })
    }

    /// `text` with every secret (and, with `holdingTail`, a tail that begins one) replaced, or nil
    /// when nothing was found. `scan` carries on from the text before and into the next.
    public func redact(_ text: String, scan: inout Scan, holdingTail: Bool = true) -> String? {
        guard !isEmpty else { return nil }
        var text = text
        let result = text.withUTF8 { bytes in redact(bytes, scan: &scan, holdingTail: holdingTail) }
        return result.map { String(decoding: $0, as: UTF8.self) }
    }

    /// A text on its own (log lines).
    public func redact(_ text: String) -> String? {
        var scan = Scan()
        return redact(text, scan: &scan, holdingTail: false)
    }

    /// The bytes with every secret replaced, or nil when nothing was found. With `holdingTail`
    /// (texts of a stream), a text that ends with the start of a value, or starts with the end of
    /// one, loses that part too (4 bytes or more): a value split across two texts that other texts
    /// separate is found on both sides.
    public func redact(_ bytes: UnsafeBufferPointer<UInt8>, scan: inout Scan, holdingTail: Bool) -> [UInt8]? {
        guard !isEmpty else { return nil }
        var ranges: [(start: Int, end: Int, label: Int32)] = []
        if holdingTail {
            let head = backward.longestTail(of: bytes, limit: longestPattern)
            if head.length >= Self.minimumHeldPrefix { ranges.append((0, head.length, head.label)) }
        }
        scan.state = forward.run(bytes, from: scan.state) { start, end, label in Self.add((start, end, label), to: &ranges) }
        let held = Int(forward.depth[Int(scan.state)])
        if holdingTail, held >= Self.minimumHeldPrefix, !bytes.isEmpty {
            Self.add((max(0, bytes.count - held), bytes.count, forward.prefixLabel[Int(scan.state)]), to: &ranges)
        }
        guard !ranges.isEmpty else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var position = 0
        for range in ranges {
            output.append(contentsOf: bytes[position..<range.start])
            output.append(contentsOf: "[redacted:\(labels[Int(range.label)])]".utf8)
            position = range.end
        }
        output.append(contentsOf: bytes[position..<bytes.count])
        return output
    }

    /// Adds a range, merging it with the last one when they overlap or touch (ranges come in order
    /// of their ends).
    private static func add(_ range: (start: Int, end: Int, label: Int32), to ranges: inout [(start: Int, end: Int, label: Int32)]) {
        var range = range
        while let last = ranges.last, range.start <= last.end {
            range = (min(last.start, range.start), max(last.end, range.end), last.label)
            ranges.removeLast()
        }
        ranges.append(range)
    }

    /// An Aho–Corasick automaton over bytes. States are numbered breadth-first, so the states near
    /// the root (fewer than `denseDepth` bytes in, where ordinary text spends its time) come first
    /// and have complete rows of transitions over byte classes; deeper states keep only their
    /// children and fall back along failure links. Memory grows with the total length of the
    /// patterns (not times the alphabet), and the dense part is small enough to stay in cache.
    struct Automaton: Sendable {
        static let denseDepth: Int32 = 8

        let byteClass: [UInt8]
        let classCount: Int
        /// States `0..<denseCount` have row `state` of `dense`.
        let denseCount: Int
        let dense: [Int32]
        /// Children of every state: `childBytes`/`childStates` from `childStart[state]` to `childStart[state + 1]`.
        let childStart: [Int32]
        let childBytes: [UInt8]
        let childStates: [Int32]
        let failure: [Int32]
        /// Per state: the length of the longest pattern ending there (0: none), and its label.
        let matchLength: [Int32]
        let matchLabel: [Int32]
        /// Per state: how many bytes of some pattern it has seen, and that pattern's label.
        let depth: [Int32]
        let prefixLabel: [Int32]

        init(_ patterns: [(bytes: [UInt8], label: Int32)]) {
            // Bytes that occur in no pattern share class 0; every other byte has a class of its own.
            var byteClass = [UInt8](repeating: 0, count: 256)
            var classCount = 1
            for pattern in patterns {
                for byte in pattern.bytes where byteClass[Int(byte)] == 0 {
                    byteClass[Int(byte)] = UInt8(classCount)
                    classCount += 1
                }
            }
            // The trie, in insertion order.
            var trie: [[(byte: UInt8, state: Int)]] = [[]]
            var trieDepth: [Int32] = [0]
            var triePrefixLabel: [Int32] = [-1]
            var trieMatch: [(length: Int32, label: Int32)] = [(0, -1)]
            for pattern in patterns {
                var state = 0
                for byte in pattern.bytes {
                    if let next = trie[state].first(where: { $0.byte == byte }) {
                        state = next.state
                    } else {
                        trie[state].append((byte, trie.count))
                        trie.append([])
                        trieDepth.append(trieDepth[state] + 1)
                        triePrefixLabel.append(pattern.label)
                        trieMatch.append((0, -1))
                        state = trie.count - 1
                    }
                }
                if trieMatch[state].length < Int32(pattern.bytes.count) { trieMatch[state] = (Int32(pattern.bytes.count), pattern.label) }
            }
            // Renumbered breadth-first (depth never decreases along the order).
            var order = [0]
            var head = 0
            while head < order.count {
                order += trie[order[head]].map(\.state)
                head += 1
            }
            var number = [Int](repeating: 0, count: trie.count)
            for (position, state) in order.enumerated() { number[state] = position }
            let children = order.map { trie[$0].map { (byte: $0.byte, state: number[$0.state]) } }
            let depth = order.map { trieDepth[$0] }
            var matchLength = order.map { trieMatch[$0].length }
            var matchLabel = order.map { trieMatch[$0].label }
            // At most about 1 MiB of dense rows, however many values are known.
            let denseCount = min(depth.firstIndex { $0 >= Self.denseDepth } ?? depth.count, max(1, (1 << 20) / (4 * classCount)))

            // Failure links, matches through them and the dense rows, in that same order: a state's
            // failure is shallower, so its link and row exist when the state is reached.
            var failure = [Int32](repeating: 0, count: depth.count)
            func child(_ state: Int, _ byte: UInt8) -> Int? { children[state].first { $0.byte == byte }?.state }
            func next(_ state: Int, _ byte: UInt8) -> Int {
                var current = state
                while true {
                    if let found = child(current, byte) { return found }
                    if current == 0 { return 0 }
                    current = Int(failure[current])
                }
            }
            var representative = [UInt8](repeating: 0, count: classCount)
            for byte in 0..<256 where byteClass[byte] != 0 { representative[Int(byteClass[byte])] = UInt8(byte) }
            var dense = [Int32](repeating: 0, count: denseCount * classCount)
            for state in 0..<depth.count {
                if state != 0 {
                    let fallback = Int(failure[state])
                    if matchLength[fallback] > matchLength[state] {
                        (matchLength[state], matchLabel[state]) = (matchLength[fallback], matchLabel[fallback])
                    }
                }
                if state < denseCount {
                    for byteClassIndex in 1..<max(classCount, 1) {
                        let byte = representative[byteClassIndex]
                        dense[state * classCount + byteClassIndex] = Int32(child(state, byte) ?? (state == 0 ? 0 : next(Int(failure[state]), byte)))
                    }
                }
                for (byte, childState) in children[state] { failure[childState] = Int32(state == 0 ? 0 : next(Int(failure[state]), byte)) }
            }
            var childStart: [Int32] = []
            var childBytes: [UInt8] = []
            var childStates: [Int32] = []
            for list in children {
                childStart.append(Int32(childBytes.count))
                for (byte, state) in list {
                    childBytes.append(byte)
                    childStates.append(Int32(state))
                }
            }
            childStart.append(Int32(childBytes.count))
            self.byteClass = byteClass
            self.classCount = classCount
            self.denseCount = denseCount
            self.dense = dense
            self.childStart = childStart
            self.childBytes = childBytes
            self.childStates = childStates
            self.failure = failure
            self.depth = depth
            self.prefixLabel = order.map { triePrefixLabel[$0] }
            self.matchLength = matchLength
            self.matchLabel = matchLabel
        }

        /// The state after `byte` from a deep state: its child, or the failure chain's.
        func deepStep(_ state: Int, _ byte: UInt8) -> Int {
            var current = state
            while current >= denseCount {
                for index in Int(childStart[current])..<Int(childStart[current + 1]) where childBytes[index] == byte {
                    return Int(childStates[index])
                }
                current = Int(failure[current])
            }
            return Int(dense[current * classCount + Int(byteClass[Int(byte)])])
        }

        /// Runs over `bytes` from `state`, telling `found` each match (start clamped to 0, end,
        /// label); returns the state after the last byte.
        func run(_ bytes: UnsafeBufferPointer<UInt8>, from state: Int32, found: (Int, Int, Int32) -> Void) -> Int32 {
            var state = Int(state)
            let (denseCount, classCount) = (self.denseCount, self.classCount)
            dense.withUnsafeBufferPointer { dense in
                byteClass.withUnsafeBufferPointer { classes in
                    matchLength.withUnsafeBufferPointer { lengths in
                        for index in 0..<bytes.count {
                            let byte = bytes[index]
                            state = state < denseCount ? Int(dense[state &* classCount &+ Int(classes[Int(byte)])]) : deepStep(state, byte)
                            let length = Int(lengths[state])
                            if length > 0 { found(max(0, index + 1 - length), index + 1, matchLabel[state]) }
                        }
                    }
                }
            }
            return Int32(state)
        }

        /// Over a text's first `limit` bytes read backwards (patterns reversed): how long the
        /// longest start of the text that ends some pattern is.
        func longestTail(of bytes: UnsafeBufferPointer<UInt8>, limit: Int) -> (length: Int, label: Int32) {
            var state = 0
            for index in stride(from: min(bytes.count, limit) - 1, through: 0, by: -1) {
                let byte = bytes[index]
                state = state < denseCount ? Int(dense[state * classCount + Int(byteClass[Int(byte)])]) : deepStep(state, byte)
            }
            return (Int(depth[state]), prefixLabel[state])
        }
    }

    // MARK: The forms a value is searched in

    static func forms(of value: [UInt8]) -> Set<[UInt8]> {
        var forms: Set<[UInt8]> = [value, Array(hex(value, uppercase: false).utf8), Array(hex(value, uppercase: true).utf8)]
        forms.insert(jsonEscaped(value, slash: false))
        forms.insert(jsonEscaped(value, slash: true))
        forms.insert(percentEncoded(value))
        let standard = Array(Data(value).base64EncodedString().utf8)
        forms.insert(standard)
        forms.insert(standard.reversed().drop { $0 == UInt8(ascii: "=") }.reversed())
        forms.insert(urlSafe(standard))
        // Inside a longer base64 text the value starts at any of three byte alignments; only the
        // characters that depend on the value's bytes alone are searched.
        for offset in 0..<3 {
            let encoded = Array(Data(repeatElement(0, count: offset) + value).base64EncodedString().utf8)
            let first = (offset * 8 + 5) / 6
            let last = ((offset + value.count) * 8) / 6
            guard last - first >= minimumSecretBytes else { continue }
            let stable = Array(encoded[first..<last])
            forms.insert(stable)
            forms.insert(urlSafe(stable))
        }
        return forms
    }

    private static func hex(_ bytes: [UInt8], uppercase: Bool) -> String {
        let digits = Array((uppercase ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        var text: [UInt8] = []
        for byte in bytes { text += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]] }
        return String(decoding: text, as: UTF8.self)
    }

    private static func urlSafe(_ base64: [UInt8]) -> [UInt8] {
        base64.compactMap { byte in
            switch byte {
            case UInt8(ascii: "+"): UInt8(ascii: "-")
            case UInt8(ascii: "/"): UInt8(ascii: "_")
            case UInt8(ascii: "="): nil
            default: byte
            }
        }
    }

    private static func jsonEscaped(_ bytes: [UInt8], slash: Bool) -> [UInt8] {
        var output: [UInt8] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): output += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): output += Array("\\\\".utf8)
            case UInt8(ascii: "/") where slash: output += Array("\\/".utf8)
            case 0x0A: output += Array("\\n".utf8)
            case 0x0D: output += Array("\\r".utf8)
            case 0x09: output += Array("\\t".utf8)
            case 0..<0x20: output += Array(String(format: "\\u%04x", byte).utf8)
            default: output.append(byte)
            }
        }
        return output
    }

    private static func percentEncoded(_ bytes: [UInt8]) -> [UInt8] {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        var output: [UInt8] = []
        for byte in bytes {
            if unreserved.contains(byte) { output.append(byte) } else { output += Array(String(format: "%%%02X", byte).utf8) }
        }
        return output
    }
}
