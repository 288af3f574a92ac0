import Testing
import WardenMCP

@testable import WardenGateway

/// One request's outputs on their way to the endpoint.
@Suite struct CallChannelTests {
    let result = Result<JSONValue, JSONRPCError>.success(.object([("ok", true)]))
    let progress = JSONRPCMessage.notification(method: "notifications/progress", params: .object([("progress", 1)]))

    @Test func anOutcomeThatComesFirstIsHandedStraightToTheWaitingReader() async {
        let channel = CallChannel()
        async let first = channel.next()
        channel.finish(result)
        #expect(await first == .outcome(result))
        #expect(await channel.next() == nil, "nothing follows the outcome")
    }

    @Test func messagesWaitInOrderAndNothingFollowsTheOutcome() async {
        let channel = CallChannel()
        channel.send(progress)
        channel.send(.notification(method: "notifications/message", params: nil))
        channel.finish(result)
        channel.send(progress)
        channel.finish(.failure(.requestCancelled))
        var outputs: [CallOutput] = []
        for await output in channel { outputs.append(output) }
        #expect(outputs == [.message(progress), .message(.notification(method: "notifications/message", params: nil)), .outcome(result)])
    }

    @Test func aReaderThatIsCancelledGetsNil() async {
        let channel = CallChannel()
        let reader = Task { await channel.next() }
        reader.cancel()
        #expect(await reader.value == nil)
    }

    @Test func messagesBeyondTheCapacityAreDroppedButTheOutcomeIsKept() async {
        let channel = CallChannel()
        for _ in 0..<(CallChannel.capacity + 10) { channel.send(progress) }
        channel.finish(result)
        var count = 0
        var last: CallOutput?
        while let output = await channel.next() {
            count += 1
            last = output
        }
        #expect(count == CallChannel.capacity + 1 && last == .outcome(result))
    }
}
