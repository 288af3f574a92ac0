import Testing
import WardenMCP

@testable import WardenGateway

@Suite struct StdioPiecesTests {
    @Test func linesAreSplitAcrossChunks() {
        var splitter = LineSplitter(maximumLength: 100)
        #expect(splitter.feed(Array("{\"a\":".utf8)) == [])
        #expect(splitter.feed(Array("1}\n\n{\"b\":2}\r\n{\"c\"".utf8)) == [.line(Array("{\"a\":1}".utf8)), .line(Array("{\"b\":2}".utf8))])
        #expect(splitter.feed(Array(":3}\n".utf8)) == [.line(Array("{\"c\":3}".utf8))])
    }

    @Test func anOverlongLineStopsTheStream() {
        var splitter = LineSplitter(maximumLength: 8)
        #expect(splitter.feed(Array("short\n0123456789".utf8)) == [.line(Array("short".utf8)), .tooLong])
        #expect(splitter.feed(Array("\nmore\n".utf8)) == [])
    }

    @Test func theLimitAndCarriageReturnsHoldAcrossChunks() {
        var splitter = LineSplitter(maximumLength: 8)
        #expect(splitter.feed(Array("01234567\n0123".utf8)) == [.line(Array("01234567".utf8))], "exactly the limit is a line")
        #expect(splitter.feed(Array("\r".utf8)) == [])
        #expect(splitter.feed(Array("\n".utf8)) == [.line(Array("0123".utf8))], "a carriage return before a newline in the next chunk")
        #expect(splitter.feed(Array("01234".utf8)) == [])
        #expect(splitter.feed(Array("5678".utf8)) == [.tooLong], "a line over the limit only once its chunks are added up")
        var oneChunk = LineSplitter(maximumLength: 8)
        #expect(oneChunk.feed(Array("012345678\nab\n".utf8)) == [.tooLong], "nothing after a line over the limit")
        var carriage = LineSplitter(maximumLength: 4)
        #expect(carriage.feed(Array("0123\r\n".utf8)) == [.tooLong], "a carriage return counts until its newline comes")
    }

    @Test func serversDoNotInheritTheGatewaysSecrets() {
        let spec = StdioLaunchSpec(command: "server", environment: ["API_TOKEN": "from-the-vault", "PATH": "/custom"])
        let environment = StdioServerConnection.environment(
            spec.environment,
            parent: ["PATH": "/usr/bin", "HOME": "/root", "WARDEN_POSTGRES_PASSWORD": "secret", "AWS_SECRET_ACCESS_KEY": "x"]
        )
        #expect(environment == ["PATH": "/custom", "HOME": "/root", "API_TOKEN": "from-the-vault"])
    }
}

@Suite struct RestartPolicyTests {
    @Test func backoffDoublesUpToTheMaximumAndResetsAfterAStableRun() {
        var policy = RestartPolicy()
        let quick = Duration.seconds(1)
        #expect(policy.delayAfterRun(lasting: quick) == .milliseconds(500))
        #expect(policy.delayAfterRun(lasting: quick) == .seconds(1))
        #expect(policy.delayAfterRun(lasting: quick) == .seconds(2))
        for _ in 0..<20 { _ = policy.delayAfterRun(lasting: quick) }
        #expect(policy.delayAfterRun(lasting: quick) == .seconds(60))
        #expect(policy.delayAfterRun(lasting: .seconds(31)) == .milliseconds(500))
    }
}

@Suite struct MergedCatalogueTests {
    func server(_ id: String, _ state: DownstreamServerStatus.State = .ready, tools: [JSONValue] = [], prompts: [JSONValue] = [])
        -> DownstreamServerStatus
    {
        DownstreamServerStatus(
            serverID: id,
            state: state,
            detail: state == .ready ? nil : "the process exited",
            catalogue: state == .ready
                ? ServerCatalogue(protocolVersion: "2025-06-18", serverInfo: .object([]), capabilities: .object([]), tools: tools, prompts: prompts)
                : nil,
            restarts: 0
        )
    }

    @Test func namesAreNamespacedAndEverythingElsePassesThrough() throws {
        let tool = try JSONParser().parse(
            #"{"name":"get_time","description":"d","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true},"x-vendor":[1]}"#)
        let merged = MergedCatalogue(servers: [
            server("time", tools: [tool]), server("git", tools: [.object([("name", "log")])], prompts: [.object([("name", "summary")])]),
        ])
        #expect(merged.tools.map { $0["name"] } == [.string("git__log"), .string("time__get_time")])
        #expect(
            merged.tools[1].jsonText
                == #"{"name":"time__get_time","description":"d","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true},"x-vendor":[1]}"#)
        #expect(merged.prompts.map { $0["name"] } == [.string("git__summary")])
        #expect(merged.omissions.isEmpty)
    }

    @Test func brokenServersAndUnexposableNamesAreLeftOutWithAReason() {
        let merged = MergedCatalogue(servers: [
            server("down", .failed),
            server("ok", tools: [.object([("name", "fine")]), .object([("name", "has.dot")]), .object([("title", "nameless")])]),
        ])
        #expect(merged.tools.map { $0["name"] } == [.string("ok__fine")])
        #expect(merged.omissions.count == 3)
        #expect(merged.omissions[0] == "server 'down': failed (the process exited)")
        #expect(merged.omissions[1].contains("'has.dot' cannot be exposed"))
    }
}

@Suite struct MergedListingPagesTests {
    let items: [JSONValue] = (0..<5).map { .object([("name", .string("s__t\($0)"))]) }

    @Test func pagesFollowTheCursorToTheEnd() throws {
        let first = try CatalogueStage.page(items, key: "tools", params: nil, pageSize: 2).get()
        #expect(first["nextCursor"] == .string("o2"))
        let second = try CatalogueStage.page(items, key: "tools", params: .object([("cursor", "o2")]), pageSize: 2).get()
        #expect(second["tools"] == .array(Array(items[2..<4])))
        let last = try CatalogueStage.page(items, key: "tools", params: .object([("cursor", "o4")]), pageSize: 2).get()
        #expect(last["tools"] == .array([items[4]]) && last["nextCursor"] == nil)
        #expect(try CatalogueStage.page(items, key: "tools", params: nil).get()["nextCursor"] == nil)
    }

    @Test(arguments: ["x", "o-1", "o99", "o"])
    func foreignCursorsAreInvalidParams(_ cursor: String) {
        #expect(throws: JSONRPCError.invalidParams("invalid cursor")) {
            try CatalogueStage.page(items, key: "tools", params: .object([("cursor", .string(cursor))])).get()
        }
    }
}

@Suite struct ResourceNamespaceTests {
    @Test func urisArePrefixedAndSplitAtTheFirstPlus() throws {
        #expect(ResourceNamespace.qualify(server: "docs", uri: "svn+ssh://h/x") == "docs+svn+ssh://h/x")
        let split = try #require(ResourceNamespace.split("docs+svn+ssh://h/x"))
        #expect(split.server == "docs" && split.uri == "svn+ssh://h/x")
        #expect(ResourceNamespace.split("file:///x") == nil)
        #expect(ResourceNamespace.split("Bad+file:///x") == nil)
        #expect(ResourceNamespace.split("docs+") == nil)
    }

    @Test func resourcesAndTemplatesAreMappedInTheMergedCatalogue() throws {
        let catalogue = ServerCatalogue(
            protocolVersion: "2025-06-18", serverInfo: .object([]), capabilities: .object([]),
            resources: [try JSONParser().parse(#"{"uri":"file:///a","name":"a","mimeType":"text/plain"}"#)],
            resourceTemplates: [try JSONParser().parse(#"{"uriTemplate":"file:///{path}","name":"files"}"#)]
        )
        let merged = MergedCatalogue(servers: [
            DownstreamServerStatus(serverID: "docs", state: .ready, detail: nil, catalogue: catalogue, restarts: 0)
        ])
        #expect(merged.resources.map(\.jsonText) == [#"{"uri":"docs+file:///a","name":"a","mimeType":"text/plain"}"#])
        #expect(merged.resourceTemplates.map(\.jsonText) == [#"{"uriTemplate":"docs+file:///{path}","name":"files"}"#])
        #expect(merged.serverListing(uri: "file:///a") == "docs")
        #expect(merged.serverListing(uri: "file:///b") == nil)
    }
}
