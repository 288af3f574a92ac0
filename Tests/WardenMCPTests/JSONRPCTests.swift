import Testing
import WardenMCP

@Suite struct JSONRPCTests {
    func parse(_ text: String) throws -> JSONRPCMessage {
        try JSONRPCMessage.parse(JSONParser().parse(text))
    }

    @Test func kindsOfMessages() throws {
        #expect(try parse(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#) == .request(id: .number("1"), method: "tools/list", params: nil))
        #expect(try parse(#"{"jsonrpc":"2.0","id":"a","method":"x","params":{"k":1}}"#).id == .string("a"))
        #expect(
            try parse(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#) == .notification(method: "notifications/initialized", params: nil))
        #expect(try parse(#"{"jsonrpc":"2.0","id":7,"result":{}}"#) == .result(id: .number("7"), result: .object([])))
        #expect(
            try parse(#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"nope"}}"#)
                == .error(id: .number("7"), JSONRPCError(code: -32601, message: "nope")))
    }

    @Test(arguments: [
        (#"[]"#, "must be a JSON object"),
        (#"{"id":1,"method":"x"}"#, "\"jsonrpc\" must be \"2.0\""),
        (#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, "\"jsonrpc\" must be \"2.0\""),
        (#"{"jsonrpc":"2.0","id":1,"method":""}"#, "non-empty string"),
        (#"{"jsonrpc":"2.0","id":1,"method":5}"#, "non-empty string"),
        (#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, "string or a number"),
        (#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#, "integer"),
        (#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#, "object or an array"),
        (#"{"jsonrpc":"2.0","id":1}"#, "needs \"method\""),
        (#"{"jsonrpc":"2.0","result":{}}"#, "needs an \"id\""),
        (#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#, "integer \"code\""),
    ])
    func invalidMessagesAreInvalidRequests(text: String, reason: String) {
        #expect { try parse(text) } throws: { error in
            guard let error = error as? JSONRPCError else { return false }
            return error.code == -32600 && error.message.contains(reason)
        }
    }

    @Test func serializesBack() throws {
        let text = #"{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"a__b","arguments":{}}}"#
        #expect(try parse(text).json.jsonText == text)
        let error = JSONRPCMessage.error(id: nil, .parseError("unexpected character at byte 0"))
        #expect(
            error.json.jsonText == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: unexpected character at byte 0"}}"#)
    }
}

@Suite struct ToolNamespaceTests {
    @Test func qualifyAndSplit() {
        #expect(ToolNamespace.qualify(server: "github", name: "create_issue") == "github__create_issue")
        #expect(ToolNamespace.split("github__create_issue")! == ("github", "create_issue"))
        #expect(ToolNamespace.split("git-2__log__all")! == ("git-2", "log__all"))
        #expect(ToolNamespace.split("nosplit") == nil)
        #expect(ToolNamespace.split("Bad__x") == nil)
    }

    @Test func namesThatBreakLLMRulesAreRefused() {
        #expect(ToolNamespace.qualify(server: "a", name: "has.dot") == nil)
        #expect(ToolNamespace.qualify(server: "a", name: "has space") == nil)
        #expect(ToolNamespace.qualify(server: "a", name: String(repeating: "x", count: 62)) == nil)
        #expect(ToolNamespace.qualify(server: "a", name: String(repeating: "x", count: 61)) != nil)
    }

    @Test func serverIDs() {
        #expect(ToolNamespace.isValidServerID("github"))
        #expect(ToolNamespace.isValidServerID("mcp-server-time"))
        #expect(!ToolNamespace.isValidServerID(""))
        #expect(!ToolNamespace.isValidServerID("-x"))
        #expect(!ToolNamespace.isValidServerID("a_b"))
        #expect(!ToolNamespace.isValidServerID("UPPER"))
        #expect(!ToolNamespace.isValidServerID(String(repeating: "a", count: 33)))
    }
}

@Suite struct ServerSentEventParserTests {
    @Test func eventsAreParsedAcrossChunksAndLineEndings() throws {
        var parser = ServerSentEventParser()
        #expect(try parser.feed(Array("id: 7\r".utf8)) == [])
        #expect(try parser.feed(Array("\nevent: message\rdata: {\"a\"".utf8)) == [])
        #expect(
            try parser.feed(Array(":1}\r\n\r\n: keep-alive\n\ndata:x\ndata: y\n\n".utf8)) == [
                ServerSentEvent(id: "7", event: "message", data: "{\"a\":1}"),
                ServerSentEvent(id: "7", event: nil, data: "x\ny"),
            ])
    }

    @Test func anOversizedEventFails() {
        var parser = ServerSentEventParser(maximumEventBytes: 16)
        #expect(throws: ServerSentEventParser.TooLarge.self) { try parser.feed(Array("data: 0123456789abcdefghij".utf8)) }
    }

    @Test func encodingRoundTrips() throws {
        let event = ServerSentEvent(id: "s1_4", event: "message", data: "line\nnext")
        var parser = ServerSentEventParser()
        #expect(try parser.feed(event.encoded) == [event])
    }
}
