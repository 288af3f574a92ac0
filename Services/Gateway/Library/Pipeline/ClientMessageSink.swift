import WardenMCP

/// Where the client's own messages go, on whichever replica they concern: cancellations to the
/// replica running the request, answers to the replica whose server asked.
protocol ClientMessageSink: Sendable {
    func cancel(_ key: InFlightCalls.RequestKey)
    func answer(session: String, id: JSONRPCID, _ message: JSONRPCMessage)
}
