import Logging
import Testing
import WardenMCP

@testable import WardenGateway

@Suite struct StatelessEnvelopeTests {
    let meta =
        #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}"#

    func params(_ extra: String = "") throws -> JSONValue {
        try JSONParser().parse("{\(extra.isEmpty ? "" : extra + ",")\(meta)}")
    }

    func headers(_ method: String?, name: String? = nil, version: String? = "2026-07-28") -> StatelessEnvelope.Headers {
        StatelessEnvelope.Headers(protocolVersion: version, method: method, name: name)
    }

    @Test func aCompleteRequestPasses() throws {
        let result = StatelessEnvelope.validate(
            method: "tools/call", params: try params(#""name":"time__now""#), headers: headers("tools/call", name: "time__now"))
        #expect(result == .success(StatelessEnvelope(protocolVersion: "2026-07-28", clientName: "c")))
    }

    @Test func eraIsRecognisedByHeaderOrEnvelope() throws {
        #expect(StatelessEnvelope.isStateless(params: nil, headers: headers(nil)))
        #expect(StatelessEnvelope.isStateless(params: try params(), headers: headers(nil, version: nil)))
        #expect(!StatelessEnvelope.isStateless(params: .object([]), headers: headers(nil, version: "2025-06-18")))
    }

    @Test func rungsFailInOrderWithTheirCodes() throws {
        func code(_ method: String, _ params: JSONValue?, _ headers: StatelessEnvelope.Headers) -> Int? {
            if case .failure(let error) = StatelessEnvelope.validate(method: method, params: params, headers: headers) { return error.code }
            return nil
        }
        #expect(code("tools/list", .object([]), headers("tools/list")) == -32602)
        #expect(
            code("tools/list", try JSONParser().parse(#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#), headers("tools/list"))
                == -32602)
        #expect(code("tools/list", try params(), headers("tools/call")) == -32020)
        #expect(code("tools/list", try params(), headers("tools/list", version: "2025-06-18")) == -32020)
        #expect(code("tools/call", try params(#""name":"a__b""#), headers("tools/call", name: "a__c")) == -32020)
        #expect(code("tools/call", try params(#""name":"a__b""#), headers("tools/call")) == -32020)
        let future = try JSONParser().parse(
            #"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}"#)
        #expect(code("tools/list", future, headers("tools/list", version: "2099-01-01")) == -32022)
    }

    @Test func headerValuesMayBeBase64Wrapped() {
        #expect(StatelessEnvelope.decodeHeaderValue("plain") == "plain")
        #expect(StatelessEnvelope.decodeHeaderValue("=?base64?w6l0w6k=?=") == "été")
        #expect(StatelessEnvelope.decodeHeaderValue("=?base64?not base64?=") == nil)
    }

    @Test func resultsAreStamped() throws {
        let stamped = StatelessEnvelope.stamp(
            try JSONParser().parse(#"{"tools":[],"_meta":{"k":1}}"#), method: "tools/list", serverInfo: .object([("name", "warden")]))
        #expect(
            stamped.jsonText
                == #"{"tools":[],"_meta":{"k":1,"io.modelcontextprotocol/serverInfo":{"name":"warden"}},"resultType":"complete","ttlMs":0,"cacheScope":"private"}"#
        )
        let call = StatelessEnvelope.stamp(
            try JSONParser().parse(#"{"content":[],"resultType":"complete"}"#), method: "tools/call", serverInfo: .object([]))
        #expect(call.jsonText == #"{"content":[],"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{}}}"#)
    }
}

@Suite struct RequestRoutingTests {
    let registry: DownstreamRegistry = {
        let logger = Logger(label: "test")
        let supervisors = ["time", "docs"].map { DownstreamSupervisor(serverID: $0, spec: StdioLaunchSpec(command: "/bin/false"), logger: logger) }
        return DownstreamRegistry(supervisors: supervisors)
    }()

    /// Where a request goes: its server and the params it gets.
    struct Routed: Equatable {
        var server: String
        var params: JSONValue
    }

    /// The route stage, as the pipeline runs it.
    func route(_ method: String, _ params: String) throws -> Result<Routed, JSONRPCError> {
        let parsed = try JSONParser().parse(params)
        return RouteStage(registry: registry).run(method: method, params: parsed, org: nil).map { target in
            Routed(server: target.server, params: target.params)
        }
    }

    @Test func aToolOfAServerThatNeverListedIsNotCalledUnchecked() async throws {
        let parsed = try JSONParser().parse(#"{"name":"time__now"}"#)
        let request = ClientRequest(
            id: .number("1"), method: "tools/call", params: parsed, caller: MCPCaller(protocolVersion: "2025-11-25", sessionID: "s", clientName: nil))
        guard case .success(let target) = RouteStage(registry: registry).run(method: "tools/call", params: parsed, org: nil) else {
            Issue.record("not routed")
            return
        }
        // The server (/bin/false) never lists its tools: the call is refused, not forwarded unchecked.
        let exposed = await ExposureStage(listingTimeout: .milliseconds(200)).run(target, requested: request)
        guard case .failure(let error) = exposed else {
            Issue.record("a tool nobody listed was let through")
            return
        }
        #expect(error.message.contains("did not become ready") && error.message.contains("time__now was not run"), "\(error.message)")
    }

    @Test func namesAndURIsRouteToTheirServerWithTheServersOwnNames() throws {
        #expect(
            try route("tools/call", #"{"name":"time__now","arguments":{"a":1}}"#)
                == .success(.init(server: "time", params: try JSONParser().parse(#"{"name":"now","arguments":{"a":1}}"#))))
        #expect(
            try route("resources/read", #"{"uri":"docs+file:///a+b.txt"}"#)
                == .success(.init(server: "docs", params: try JSONParser().parse(#"{"uri":"file:///a+b.txt"}"#))))
        #expect(
            try route("completion/complete", #"{"ref":{"type":"ref/prompt","name":"docs__summary"},"argument":{"name":"x","value":"y"}}"#)
                == .success(
                    .init(
                        server: "docs",
                        params: try JSONParser().parse(#"{"ref":{"type":"ref/prompt","name":"summary"},"argument":{"name":"x","value":"y"}}"#))))
    }

    @Test func theStatelessEnvelopeIsNotForwarded() throws {
        let target = try route(
            "tools/call", #"{"name":"time__now","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":7}}"#)
        #expect(target == .success(.init(server: "time", params: try JSONParser().parse(#"{"name":"now","_meta":{"progressToken":7}}"#))))
        let bare = try route("tools/call", #"{"name":"time__now","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#)
        #expect(bare == .success(.init(server: "time", params: try JSONParser().parse(#"{"name":"now"}"#))))
    }

    @Test func unknownTargetsAreInvalidParamsOrNotFound() throws {
        func code(_ method: String, _ params: String) throws -> Int? {
            if case .failure(let error) = try route(method, params) { return error.code }
            return nil
        }
        #expect(try code("tools/call", #"{"name":"nobody__now"}"#) == -32602)
        #expect(try code("tools/call", #"{"name":"plain"}"#) == -32602)
        #expect(try code("tools/call", #"{}"#) == -32602)
        #expect(try code("resources/read", #"{"uri":"file:///unlisted"}"#) == -32002)
        #expect(try code("completion/complete", #"{"ref":{"type":"ref/other"}}"#) == -32602)
        #expect(try code("sampling/createMessage", #"{}"#) == -32601)
    }
}

@Suite struct InFlightCallsTests {
    func drain(_ channel: CallChannel) async -> [CallOutput] {
        channel.finish(.success(.object([])))
        var outputs: [CallOutput] = []
        for await output in channel.outputs { outputs.append(output) }
        return outputs.dropLast()
    }

    @Test func progressTokensAreMadeUniqueAndMappedBack() async throws {
        let calls = InFlightCalls()
        let a = CallChannel(), b = CallChannel()
        let params = try JSONParser().parse(#"{"name":"slow","_meta":{"progressToken":"same"}}"#)
        let (first, forwardedA) = calls.begin(server: "s", params: params, channel: a)
        let (_, forwardedB) = calls.begin(server: "s", params: params, channel: b)
        let tokenA = try #require(forwardedA["_meta"]?["progressToken"])
        #expect(tokenA != forwardedB["_meta"]?["progressToken"], "two clients may use the same token")
        let progress = JSONRPCMessage.notification(method: "notifications/progress", params: .object([("progressToken", tokenA), ("progress", 1)]))
        #expect(calls.route(progress, from: "s"))
        #expect(!calls.route(progress, from: "other"), "a server cannot reach another server's calls")
        calls.end(first)
        #expect(!calls.route(progress, from: "s"), "nothing after the call ended")
        let delivered = await drain(a)
        #expect(
            delivered == [.message(.notification(method: "notifications/progress", params: .object([("progressToken", "same"), ("progress", 1)])))])
        #expect(await drain(b).isEmpty)
    }

    @Test func unattributableNotificationsGoOnlyToASoleCall() async throws {
        let calls = InFlightCalls()
        let log = JSONRPCMessage.notification(method: "notifications/message", params: .object([("level", "info"), ("data", "x")]))
        let a = CallChannel(), b = CallChannel()
        let (first, _) = calls.begin(server: "s", params: .object([]), channel: a)
        #expect(calls.route(log, from: "s"))
        let (second, _) = calls.begin(server: "s", params: .object([]), channel: b)
        #expect(!calls.route(log, from: "s"), "two calls in flight: never guess")
        calls.end(first)
        calls.end(second)
        #expect(await drain(a) == [.message(log)])
        #expect(await drain(b).isEmpty)
    }

    @Test func eventIDsRoundTripAndRejectForeignText() {
        let id = MCPEventID(stream: "0123456789abcdef", sequence: 42)
        #expect(MCPEventID(id.description) == id)
        for bad in ["", "x-1", "0123456789abcdef-0", "0123456789abcdef-", "0123456789ABCDEF-3", "0123456789abcdef-1-2"] {
            #expect(MCPEventID(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct ServerRequestRelayTests {
    @Test func answersReachOnlyTheSessionThatWasAsked() async throws {
        let relay = ServerRequestRelay()
        let channel = CallChannel()
        async let answer = relay.ask("elicitation/create", params: .object([]), session: "s1", channel: channel, timeout: .seconds(5))
        var asked: JSONRPCMessage?
        for await output in channel.outputs {
            if case .message(let message) = output { asked = message }
            break
        }
        guard case .request(.string(let id), "elicitation/create", _)? = asked else {
            Issue.record("no request: \(String(describing: asked))"); return
        }
        #expect(relay.isOurs(id))
        #expect(!relay.deliver(id: id, session: "s2", .result(id: .string(id), result: "forged")), "another session cannot answer")
        #expect(relay.deliver(id: id, session: "s1", .result(id: .string(id), result: .object([("action", "accept")]))))
        #expect(await answer == .result(id: .string(id), result: .object([("action", "accept")])))
        #expect(!relay.deliver(id: id, session: "s1", nil), "answered once")
    }

    @Test func anUnansweredQuestionTimesOut() async {
        let relay = ServerRequestRelay()
        #expect(await relay.ask("roots/list", params: nil, session: "s", channel: CallChannel(), timeout: .milliseconds(50)) == nil)
    }

    @Test func aCancelledCallStopsWaitingForTheClientsAnswer() async {
        let relay = ServerRequestRelay()
        let asking = Task { await relay.ask("roots/list", params: nil, session: "s", channel: CallChannel(), timeout: .seconds(3600)) }
        asking.cancel()
        #expect(await asking.value == nil, "cancelled before or after the question was registered, the wait ends")
    }
}

@Suite struct ServerRequestWithdrawalTests {
    @Test func aServerCancellingItsRequestTellsTheClientUnderTheGatewaysID() async throws {
        let relay = ServerRequestRelay()
        let channel = CallChannel()
        async let answer = relay.ask(
            "elicitation/create", params: nil, session: "s", channel: channel, timeout: .seconds(5), server: "ask", serverRequestID: .number("7"))
        var outputs = channel.outputs.makeAsyncIterator()
        guard case .message(.request(.string(let id), _, _))? = await outputs.next() else { Issue.record("not asked"); return }
        #expect(!relay.withdraw(server: "other", serverRequestID: .number("7"), reason: nil), "another server cannot withdraw it")
        #expect(relay.withdraw(server: "ask", serverRequestID: .number("7"), reason: "timeout"))
        #expect(
            await outputs.next()
                == .message(.notification(method: "notifications/cancelled", params: .object([("requestId", .string(id)), ("reason", "timeout")]))))
        #expect(await answer == nil)
    }
}

@Suite struct SessionStreamsTests {
    @Test func newsOfAnOrgsServerReachesThatOrgsStreamsOnly() async {
        let streams = SessionStreams()
        let acme = streams.open(session: "s1", agent: "a1", org: "acme")
        let globex = streams.open(session: "s2", agent: "a2", org: "globex")
        let changed = JSONRPCMessage.notification(method: "notifications/tools/list_changed", params: nil)
        streams.broadcast(changed, org: "acme")
        streams.broadcast(JSONRPCMessage.notification(method: "notifications/prompts/list_changed", params: nil))
        streams.close(acme.number)
        streams.close(globex.number)
        var acmeSaw: [String] = [], globexSaw: [String] = []
        for await message in acme.messages { acmeSaw.append(message.method ?? "") }
        for await message in globex.messages { globexSaw.append(message.method ?? "") }
        #expect(acmeSaw == ["notifications/tools/list_changed", "notifications/prompts/list_changed"])
        #expect(globexSaw == ["notifications/prompts/list_changed"], "a shared server's news reaches everyone; acme's only acme")
    }
}
