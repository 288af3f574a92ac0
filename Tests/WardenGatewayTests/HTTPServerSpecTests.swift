import Testing

@testable import WardenGateway

/// What of a remote server's URL an agent's errors show: where it is, never its path, query or user info.
@Suite struct HTTPServerSpecTests {
    @Test func errorsShowTheOriginOnly() {
        #expect(HTTPServerSpec(url: "https://hooks.example.com/services/T0/B0/tokenInThePath?key=k#f").origin == "https://hooks.example.com")
        #expect(HTTPServerSpec(url: "http://user:password@127.0.0.1:8123/mcp").origin == "http://127.0.0.1:8123")
        #expect(HTTPServerSpec(url: "http://[::1]:9000/mcp").origin == "http://[::1]:9000")
        #expect(HTTPServerSpec(url: "https://api.example.com/mcp?key=${secret://search/key}").origin == "https://api.example.com")
        #expect(HTTPServerSpec(url: "HTTPS://api.example.com:8443").origin == "https://api.example.com:8443")
        #expect(HTTPServerSpec(url: "not a url").origin == "(invalid URL)")
        #expect(HTTPServerSpec(url: "file:///etc/secret").origin == "(invalid URL)")
    }

    @Test func adminsSeeThePathButNotTheQueryOrUserInfo() {
        #expect(HTTPServerSpec(url: "https://user:pw@api.example.com/v1/mcp?token=t").displayURL == "https://api.example.com/v1/mcp")
    }
}
