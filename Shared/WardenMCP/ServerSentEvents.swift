/// One Server-Sent Event (the fields MCP uses).
public struct ServerSentEvent: Sendable, Equatable {
    public var id: String?
    public var event: String?
    public var data: String

    public init(id: String? = nil, event: String? = nil, data: String) {
        self.id = id
        self.event = event
        self.data = data
    }

    /// The event on the wire. `data` may hold newlines (one `data:` line each); ids and event names
    /// are ours and never do.
    public var encoded: [UInt8] {
        var text = ""
        if let id { text += "id: \(id)\n" }
        if let event { text += "event: \(event)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        text += "\n"
        return Array(text.utf8)
    }
}

/// Reads a `text/event-stream` incrementally (WHATWG rules: `\n`, `\r\n` or `\r` end lines, a blank
/// line ends an event, `:` starts a comment, one optional space after the colon). An event whose
/// data grows past `maximumEventBytes` fails the stream: a peer must not make us buffer without bound.
public struct ServerSentEventParser: Sendable {
    public struct TooLarge: Error, Sendable, CustomStringConvertible {
        public var description: String { "an event is larger than the limit" }
    }

    let maximumEventBytes: Int
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var id: String?
    private var event: String?
    private var afterCarriageReturn = false

    public init(maximumEventBytes: Int = 4 << 20) {
        self.maximumEventBytes = maximumEventBytes
    }

    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(TooLarge) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            if afterCarriageReturn {
                afterCarriageReturn = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0A, 0x0D:
                afterCarriageReturn = byte == 0x0D
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
                if line.count + data.count > maximumEventBytes { throw TooLarge() }
            }
        }
        return events
    }

    /// Processes one complete line; returns an event when the line was blank.
    private mutating func endLine() -> ServerSentEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer { data.removeAll(keepingCapacity: true); hasData = false; event = nil }
            guard hasData else { return nil }
            return ServerSentEvent(id: id, event: event, data: String(decoding: data, as: UTF8.self))
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let name = String(decoding: line[..<colon], as: UTF8.self)
        var value = colon < line.endIndex ? line[(colon + 1)...] : []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        switch name {
        case "data":
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        case "id":
            if !value.contains(0) { id = String(decoding: value, as: UTF8.self) }
        case "event":
            event = String(decoding: value, as: UTF8.self)
        default:
            break
        }
        return nil
    }
}
