import NIOCore

/// The connections of one `DownstreamHTTPClient`, as a value: events in, actions out, no I/O.
/// At most `maximum` are open at once — in use, kept idle, or being made — so that agents calling
/// one server at once cannot open connections to it without bound (async-http-client, which this
/// client replaced, queued requests past 32 a host). A request beyond waits, first come first
/// served, for a connection to be kept (it is handed over) or closed (its place is).
///
/// A place is taken when a connection is to be made and given back (`released`) exactly once: when
/// its channel closes, or when making it failed. Connections this pool closes (expired, idle too
/// many) give their place back when they have closed, like any other. Requests that must not wait
/// (`beyondLimit`: the gateway's answers to a server's own requests, and its notifications) get a
/// connection even past the limit: calls waiting for a server's request to be answered may hold
/// every place, and the answer is what frees them.
struct DownstreamConnectionPool<Connection: Sendable>: Sendable {
    let maximum: Int
    let maximumIdle: Int
    private(set) var idle: [Connection] = []
    /// Connections open or being made.
    private(set) var open = 0
    /// Requests waiting for a connection, in order (taken from the front in constant time).
    private(set) var waiting = CircularBuffer<UInt64>()
    private(set) var isShutDown = false

    init(maximum: Int, maximumIdle: Int) {
        precondition(maximum > 0 && maximumIdle >= 0)
        self.maximum = maximum
        self.maximumIdle = maximumIdle
    }

    /// What a request gets.
    enum Grant: Sendable {
        /// An idle connection to use.
        case use(Connection)
        /// A place: make a new connection (and give the place back if that fails).
        case connect
    }

    enum Acquired: Sendable {
        case granted(Grant)
        /// Every place is taken: the request waits (its id is queued) for `kept` or `released` to
        /// hand it something, or gives up (`abandon`).
        case wait
    }

    /// A request for a connection. `usable` says whether an idle connection may serve it (still
    /// open, to the same server, not idle for too long); those that may not are to be closed.
    /// `retry`: a request that had its turn and was given a connection that turned out closed — a
    /// new connection, not an idle one, and if it waits, first in line.
    mutating func acquire(_ request: UInt64, retry: Bool = false, beyondLimit: Bool = false, usable: (Connection) -> Bool) -> (
        Acquired, close: [Connection]
    ) {
        var close: [Connection] = []
        if !retry {
            while let connection = idle.popLast() {
                if usable(connection) { return (.granted(.use(connection)), close) }
                close.append(connection)
            }
        }
        guard open < maximum || beyondLimit else {
            if retry { waiting.prepend(request) } else { waiting.append(request) }
            return (.wait, close)
        }
        open += 1
        return (.granted(.connect), close)
    }

    /// What a kept or released connection leads to.
    enum Handover: Sendable {
        case none
        /// Resume the waiting request with this.
        case grant(UInt64, Grant)
    }

    /// A connection whose answer ended cleanly: to the first waiting request, else kept idle (up
    /// to `maximumIdle`; else to be closed). `expired`: idle connections not to be used again,
    /// closed on the way.
    mutating func kept(_ connection: Connection, expired: (Connection) -> Bool) -> (Handover, close: [Connection]) {
        var close: [Connection] = []
        if idle.contains(where: expired) {
            close = idle.filter(expired)
            idle.removeAll(where: expired)
        }
        if !isShutDown, !waiting.isEmpty { return (.grant(waiting.removeFirst(), .use(connection)), close) }
        if !isShutDown, idle.count < maximumIdle {
            idle.append(connection)
        } else {
            close.append(connection)
        }
        return (.none, close)
    }

    /// A connection closed, or making one failed: its place goes to the first waiting request
    /// (unless connections made beyond the limit still hold it).
    mutating func released() -> Handover {
        precondition(open > 0, "a place given back that was not taken")
        guard !waiting.isEmpty, open <= maximum else {
            open -= 1
            return .none
        }
        return .grant(waiting.removeFirst(), .connect)
    }

    /// A waiting request that gave up (its caller, or its deadline): whether it was still waiting
    /// (if not, it was handed something already, or never waited).
    mutating func abandon(_ request: UInt64) -> Bool {
        guard let index = waiting.firstIndex(of: request) else { return false }
        waiting.remove(at: index)
        return true
    }

    /// No connection is kept any more: the idle ones are to be closed, and those whose answers end
    /// from now on too; the waiting requests are to be failed. A request that comes later still
    /// gets a place (a call racing the shutdown is not failed for it).
    mutating func shutDown() -> (close: [Connection], waiting: [UInt64]) {
        isShutDown = true
        defer {
            idle.removeAll()
            waiting.removeAll()
        }
        return (idle, Array(waiting))
    }
}
