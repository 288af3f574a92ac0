import WardenMCP

/// The calls this replica forwards right now, as a value: events in, actions out, no I/O. Generic
/// over what delivers a message to a call (`Channel`) and what runs a client request (`Job`), so the
/// rules are tested with plain values; `InFlightCalls` performs the actions.
///
/// - Progress: the client's `progressToken` is replaced by one unique to this replica before the
///   call is forwarded (two clients may pick the same token), and mapped back on the way out.
/// - Logging and other unattributable notifications, and a server's own requests: they go to the
///   call only when exactly one is in flight on that server; otherwise nobody, never a guess
///   (another session may be another tenant).
struct InFlightCallsStateMachine<Channel, Job> {
    struct Call {
        var server: String
        var channel: Channel
        var clientToken: JSONValue?
        var gatewayToken: String?
        var caller: MCPCaller?
    }

    enum NotificationAction {
        /// Hand `message` (progress tokens mapped back) to `channel`.
        case deliver(Channel, JSONRPCMessage)
        /// No call it can belong to.
        case drop
    }

    enum CancelAction {
        /// Stop the job serving the request.
        case cancel(Job)
        /// This replica does not serve it.
        case notHere
    }

    private enum JobState {
        case running(Job)
        case cancelled
    }

    private var lastNumber = 0
    private var calls: [Int: Call] = [:]
    private var callsByToken: [String: Int] = [:]
    private var jobs: [InFlightCalls.RequestKey: JobState] = [:]
    /// Requests whose job ended before it was registered (a job may finish at once).
    private var endedEarly: Set<InFlightCalls.RequestKey> = []

    /// A call about to be forwarded: its number and the params to forward.
    mutating func begin(server: String, params: JSONValue, channel: Channel, caller: MCPCaller?) -> (number: Int, params: JSONValue) {
        lastNumber += 1
        let number = lastNumber
        let clientToken = params["_meta"]?["progressToken"]
        var forwarded = params
        var gatewayToken: String?
        if clientToken != nil, let meta = params["_meta"] {
            let token = "warden-\(number)"
            gatewayToken = token
            callsByToken[token] = number
            forwarded = params.setting("_meta", to: meta.setting("progressToken", to: .string(token)))
        }
        calls[number] = Call(server: server, channel: channel, clientToken: clientToken, gatewayToken: gatewayToken, caller: caller)
        return (number, forwarded)
    }

    mutating func end(_ number: Int) {
        if let token = calls.removeValue(forKey: number)?.gatewayToken { callsByToken[token] = nil }
    }

    /// A notification from `server`.
    func notification(_ message: JSONRPCMessage, from server: String) -> NotificationAction {
        guard case .notification(let method, let params) = message else { return .drop }
        if method == "notifications/progress" {
            guard case .string(let token) = params?["progressToken"] ?? .null, let number = callsByToken[token],
                let call = calls[number], call.server == server, let clientToken = call.clientToken
            else { return .drop }
            return .deliver(call.channel, .notification(method: method, params: params?.setting("progressToken", to: clientToken)))
        }
        guard let only = soleCall(on: server) else { return .drop }
        return .deliver(only.channel, message)
    }

    /// Whom a server's own request (sampling, elicitation, roots) is for: the caller of the sole
    /// call in flight on that server; nil when there is none or more than one.
    func requester(for server: String) -> (channel: Channel, caller: MCPCaller)? {
        guard let only = soleCall(on: server), let caller = only.caller else { return nil }
        return (only.channel, caller)
    }

    /// A client request's job was started; it may have ended already.
    mutating func started(_ key: InFlightCalls.RequestKey, job: Job) {
        if endedEarly.remove(key) == nil { jobs[key] = .running(job) }
    }

    /// A client request's job ended.
    mutating func finished(_ key: InFlightCalls.RequestKey) {
        if jobs.removeValue(forKey: key) == nil { endedEarly.insert(key) }
    }

    /// A client cancelled `key` (on this replica or, broadcast, on another).
    mutating func cancel(_ key: InFlightCalls.RequestKey) -> CancelAction {
        guard case .running(let job) = jobs[key] else { return .notHere }
        jobs[key] = .cancelled
        return .cancel(job)
    }

    var count: Int { calls.count }

    private func soleCall(on server: String) -> Call? {
        var found: Call?
        for call in calls.values where call.server == server {
            if found != nil { return nil }
            found = call
        }
        return found
    }
}
