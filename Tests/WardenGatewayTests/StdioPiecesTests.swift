import Testing
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

    @Test func serversDoNotInheritTheGatewaysSecrets() {
        let spec = StdioLaunchSpec(command: "server", environment: ["API_TOKEN": "from-the-vault", "PATH": "/custom"])
        let environment = StdioServerConnection.environment(
            for: spec,
            parent: ["PATH": "/usr/bin", "HOME": "/root", "WARDEN_POSTGRES_PASSWORD": "secret", "AWS_SECRET_ACCESS_KEY": "x"]
        )
        #expect(environment == ["PATH": "/custom", "HOME": "/root", "API_TOKEN": "from-the-vault"])
    }
}
