import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

@testable import WardenGateway

/// The Streamable HTTP client against a real HTTP server (`HTTPTestServer`): answers read whole or
/// as they come, connections reused only when an answer ended cleanly, and every failure closing
/// the connection it happened on.
@Suite struct DownstreamHTTPClientTests {
    func post(
        _ client: DownstreamHTTPClient, _ url: String, body: String = #"{"jsonrpc":"2.0"}"#, headers: HTTPHeaders = [:],
        within timeout: TimeAmount = .seconds(10), maximumBodyBytes: Int = 4_096
    ) async throws -> DownstreamHTTPClient.Response {
        try await client.execute(
            .POST, try DownstreamHTTPTarget(url: url), headers: headers, body: ByteBuffer(string: body), deadline: .now() + timeout,
            maximumBodyBytes: maximumBodyBytes)
    }

    /// Whether `condition` holds within 5 s.
    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<100 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    func text(_ response: DownstreamHTTPClient.Response) -> String? {
        guard case .whole(let body) = response.body else { return nil }
        return String(buffer: body)
    }

    @Test func answersAreReadWholeAndOneConnectionServesOneRequestAfterAnother() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        for index in 0..<5 {
            let response = try await post(client, server.url("/json"), body: #"{"n":\#(index)}"#)
            #expect(response.status == .ok)
            #expect(text(response) == #"{"n":\#(index)}"#)
        }
        #expect(server.accepted == 1)
        client.shutdown()
        await server.stop()
    }

    @Test func aConnectionTheServerClosesIsNotUsedAgain() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        #expect(text(try await post(client, server.url("/close"))) == "{}")
        #expect(text(try await post(client, server.url("/json"), body: "[1]")) == "[1]")
        #expect(server.accepted == 2)
        // Asked to close (`Connection: close`) by a server that leaves the socket open: the client closes it.
        #expect(text(try await post(client, server.url("/close-header-only"))) == "{}")
        #expect(await eventually { server.closed == 2 })
        #expect(text(try await post(client, server.url("/json"), body: "[1]")) == "[1]")
        #expect(server.accepted == 3)
        client.shutdown()
        await server.stop()
    }

    @Test func anEventStreamIsHandedOverAsItComesAndItsConnectionKept() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        let response = try await post(client, server.url("/events"))
        guard case .events(let events) = response.body else {
            Issue.record("an event stream was read whole")
            return
        }
        var parts: [String] = []
        for try await part in events { parts.append(String(buffer: part)) }
        #expect(parts == ["data: 1\n\n", "data: 2\n\n"])
        #expect(text(try await post(client, server.url("/json"), body: "[2]")) == "[2]")
        #expect(server.accepted == 1)
        client.shutdown()
        await server.stop()
    }

    @Test func noAnswerByTheDeadlineFailsTheRequestAndClosesItsConnection() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        let started = ContinuousClock.now
        await #expect(throws: DownstreamHTTPFailure.noAnswer) { try await post(client, server.url("/stall"), within: .milliseconds(200)) }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(text(try await post(client, server.url("/json"), body: "[3]")) == "[3]")
        #expect(server.accepted == 2, "the stalled connection was not used again")
        #expect(await eventually { server.closed == 1 })
        client.shutdown()
        await server.stop()
    }

    @Test func aBodyThatStallsFailsAtTheReadTimeout() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .milliseconds(300))
        let started = ContinuousClock.now
        await #expect(throws: DownstreamHTTPFailure.stalled) { try await post(client, server.url("/stall-body")) }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(text(try await post(client, server.url("/json"), body: "[4]")) == "[4]")
        #expect(server.accepted == 2)
        client.shutdown()
        await server.stop()
    }

    @Test func anAnswerThatKeepsComingOutlivesTheDeadlineAndManyReadTimeouts() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .milliseconds(400))
        // The head comes at once, then a byte every 100 ms for a second: past the 500 ms deadline
        // (which covers the connection and the head only) and more than twice the read timeout
        // (which each byte renews).
        #expect(text(try await post(client, server.url("/slow-body"), within: .milliseconds(500))) == "0123456789")
        #expect(text(try await post(client, server.url("/json"), body: "[12]")) == "[12]")
        #expect(server.accepted == 1, "the connection was kept")
        client.shutdown()
        await server.stop()
    }

    @Test func aRequestWhoseCallerHadGivenUpOrWhoseDeadlinePassedIsNotSentAndItsConnectionKept() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        #expect(text(try await post(client, server.url("/json"), body: "[13]")) == "[13]")
        let url = server.url("/json")
        let givenUp = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await post(client, url)
        }
        await #expect(throws: CancellationError.self) { try await givenUp.value }
        await #expect(throws: DownstreamHTTPFailure.noAnswer) { try await post(client, url, within: .zero) }
        #expect(text(try await post(client, server.url("/json"), body: "[14]")) == "[14]")
        #expect(server.requests == 2, "neither reached the server")
        #expect(server.accepted == 1, "the connection was kept")
        client.shutdown()
        await server.stop()
    }

    @Test func anAnswerThatIsNotASuccessIsHandedOverAtItsHeadAndItsConnectionClosed() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(20))
        // A body that stalls, or runs over the limit, does not hide the status.
        let started = ContinuousClock.now
        let stalled = try await post(client, server.url("/error-stall"), within: .seconds(20))
        #expect(stalled.status == .serviceUnavailable && text(stalled) == "")
        #expect(ContinuousClock.now - started < .seconds(10), "well before the read timeout")
        let big = try await post(client, server.url("/error-big"), maximumBodyBytes: 1_000)
        #expect(big.status == .internalServerError)
        let missing = try await post(client, server.url("/not-found"))
        #expect(missing.status == .notFound)
        #expect(await eventually { server.closed == 3 }, "each closed with its body unread")
        #expect(text(try await post(client, server.url("/json"), body: "[6]")) == "[6]")
        #expect(server.accepted == 4)
        client.shutdown()
        await server.stop()
    }

    @Test func aBodyOverTheLimitFailsAndItsConnectionCloses() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        await #expect(throws: DownstreamHTTPFailure.tooLarge) { try await post(client, server.url("/big"), maximumBodyBytes: 1_000) }
        guard case .whole(let body) = try await post(client, server.url("/big"), maximumBodyBytes: 10_000).body else {
            Issue.record("not read whole")
            return
        }
        #expect(body.readableBytes == 10_000, "exactly the limit is allowed")
        #expect(server.accepted == 2)
        client.shutdown()
        await server.stop()
    }

    @Test func anIdleConnectionTheServerClosedIsNotUsedAgain() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        #expect(text(try await post(client, server.url("/json-then-close"), body: "[9]")) == "[9]")
        #expect(await eventually { server.closed == 1 })
        // The server has closed it; give the client's event loop time to read that end of file (a
        // request racing a server's close of an idle connection fails: it is not sent again, since
        // the server may have read it).
        try await Task.sleep(for: .milliseconds(200))
        #expect(text(try await post(client, server.url("/json"), body: "[10]")) == "[10]")
        #expect(server.accepted == 2)
        client.shutdown()
        await server.stop()
    }

    @Test func anEventStreamThatComesFasterThanItIsReadFailsAndClosesItsConnection() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        guard case .events(let events) = try await post(client, server.url("/events-flood")).body else {
            Issue.record("an event stream was read whole")
            return
        }
        // Not read until the server has sent all 2,000 parts: past the 1,024 held for a reader.
        #expect(await eventually { server.closed == 1 }, "the client closed the connection")
        var parts = 0
        await #expect(throws: DownstreamHTTPFailure.overrun) {
            for try await _ in events { parts += 1 }
        }
        #expect(parts == DownstreamHTTPExchange.maximumPendingParts, "what was held is read before the failure")
        client.shutdown()
        await server.stop()
    }

    @Test func aReaderThatDropsAnEventStreamClosesItsConnection() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(30))
        do {
            guard case .events(let events) = try await post(client, server.url("/events-open")).body else {
                Issue.record("an event stream was read whole")
                return
            }
            for try await _ in events { break }  // the first part, then the stream is dropped
        }
        #expect(await eventually { server.closed == 1 })
        #expect(text(try await post(client, server.url("/json"), body: "[11]")) == "[11]")
        #expect(server.accepted == 2)
        client.shutdown()
        await server.stop()
    }

    @Test func aCallerThatGivesUpIsToldAtOnceAndTheConnectionCloses() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(30))
        let url = server.url("/stall")
        let waiting = Task { try await post(client, url, within: .seconds(30)) }
        #expect(await eventually { server.accepted == 1 })
        try await Task.sleep(for: .milliseconds(100))
        let cancelled = ContinuousClock.now
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(ContinuousClock.now - cancelled < .seconds(5))
        #expect(await eventually { server.closed == 1 })
        client.shutdown()
        await server.stop()
    }

    @Test func aReaderThatGivesUpOnAnEventStreamClosesItsConnection() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(30))
        let url = server.url("/events-open")
        let (parts, part) = AsyncStream.makeStream(of: Void.self)
        let reader = Task {
            guard case .events(let events) = try await post(client, url).body else { return }
            for try await _ in events { part.yield() }
        }
        for await _ in parts { break }  // the first part came; the reader waits for the next
        reader.cancel()
        _ = await reader.result
        #expect(await eventually { server.closed == 1 })
        #expect(text(try await post(client, server.url("/json"), body: "[5]")) == "[5]")
        #expect(server.accepted == 2)
        client.shutdown()
        await server.stop()
    }

    @Test func requestsPastTheConnectionLimitWaitForAConnectionAndUseIt() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10), maximumConnections: 2)
        // Three answers of about a second each, two connections: the third waits for one and uses it.
        let answers = try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<3 { group.addTask { text(try await post(client, server.url("/slow-body"))) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers == ["0123456789", "0123456789", "0123456789"])
        #expect(server.accepted == 2)
        client.shutdown()
        await server.stop()
    }

    @Test func aRequestWaitingForAConnectionFailsAtItsDeadlineOrWhenItsCallerGivesUp() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(30), maximumConnections: 1)
        let holding = Task { try await post(client, server.url("/stall"), within: .seconds(30)) }
        #expect(await eventually { server.accepted == 1 })
        let started = ContinuousClock.now
        await #expect(throws: DownstreamHTTPFailure.noAnswer) { try await post(client, server.url("/json"), within: .milliseconds(300)) }
        #expect(ContinuousClock.now - started >= .milliseconds(250) && ContinuousClock.now - started < .seconds(5))
        let waiting = Task { try await post(client, server.url("/json"), within: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        let cancelled = ContinuousClock.now
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(ContinuousClock.now - cancelled < .seconds(5))
        // A client shut down fails the requests waiting for a connection.
        let shutOut = Task { try await post(client, server.url("/json"), within: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        client.shutdown()
        await #expect(throws: DownstreamHTTPFailure.unreachable) { try await shutOut.value }
        #expect(server.accepted == 1, "none of them made a connection")
        // An answer or a notification (`beyondLimit`) does not wait: calls waiting on it may hold every connection.
        #expect(
            text(
                try await client.execute(
                    .POST, try DownstreamHTTPTarget(url: server.url("/json")), headers: [:], body: ByteBuffer(string: "[8]"),
                    deadline: .now() + .seconds(5), maximumBodyBytes: 4_096, beyondLimit: true)) == "[8]")
        #expect(server.accepted == 2)
        // The connection in use closes (its caller gives up): its place goes to the next request.
        holding.cancel()
        _ = await holding.result
        #expect(text(try await post(client, server.url("/json"), body: "[9]")) == "[9]")
        #expect(server.accepted == 3)
        await server.stop()
    }

    @Test func aClientShutDownKeepsNoConnection() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        #expect(text(try await post(client, server.url("/json"), body: "[7]")) == "[7]")
        client.shutdown()
        #expect(await eventually { server.closed == 1 }, "the idle connection is closed")
        #expect(text(try await post(client, server.url("/json"), body: "[8]")) == "[8]")
        #expect(await eventually { server.closed == 2 }, "an answer that ends after the shutdown does not keep its connection")
        await server.stop()
    }

    @Test func anUnreachableServerFailsAsUnreachable() async throws {
        let server = try await HTTPTestServer.start()
        let url = server.url("/json")
        await server.stop()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10), maximumConnections: 1)
        await #expect(throws: DownstreamHTTPFailure.unreachable) { try await post(client, url) }
        // The failed connection's place came back: the next request tries at once, it does not wait.
        let started = ContinuousClock.now
        await #expect(throws: DownstreamHTTPFailure.unreachable) { try await post(client, url, within: .seconds(5)) }
        #expect(ContinuousClock.now - started < .seconds(4))
    }

    /// A self-signed certificate and its key for `names` (a subjectAltName list), made by openssl.
    func selfSigned(_ names: String) throws -> (certificates: [NIOSSLCertificate], key: NIOSSLPrivateKey) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (key, certificate) = (directory.appendingPathComponent("key.pem").path, directory.appendingPathComponent("cert.pem").path)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", certificate,
            "-days", "1", "-subj", "/CN=warden-test", "-addext", "subjectAltName=\(names)",
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0)
        return (try NIOSSLCertificate.fromPEMFile(certificate), try NIOSSLPrivateKey(file: key, format: .pem))
    }

    func tlsServer(_ names: String) async throws -> (HTTPTestServer, [NIOSSLCertificate]) {
        let (certificates, key) = try selfSigned(names)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return (try await HTTPTestServer.start(tls: try NIOSSLContext(configuration: configuration)), certificates)
    }

    /// Certificates are verified against the system's roots: a server whose certificate none of them
    /// signed is refused (self-signed, for the name and the address used), before any request.
    @Test func tlsIsVerifiedAgainstTheSystemRoots() async throws {
        let (server, _) = try await tlsServer("DNS:localhost,IP:127.0.0.1")
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        for url in ["https://127.0.0.1:\(server.port)/json", "https://localhost:\(server.port)/json"] {
            await #expect(throws: DownstreamHTTPFailure.unreachable) { try await post(client, url) }
        }
        #expect(server.requests == 0)
        client.shutdown()
        await server.stop()
    }

    /// A trusted certificate for the name or address used: requests go through and the connection
    /// is kept; one for another name is refused, by name and by address.
    @Test func tlsChecksTheServersNameAndAddress() async throws {
        let (server, trusted) = try await tlsServer("DNS:localhost,IP:127.0.0.1")
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(trusted)
        let client = try DownstreamHTTPClient(readTimeout: .seconds(10), tls: configuration)
        #expect(text(try await post(client, "https://127.0.0.1:\(server.port)/json", body: "[12]")) == "[12]")
        #expect(text(try await post(client, "https://127.0.0.1:\(server.port)/json", body: "[13]")) == "[13]")
        #expect(text(try await post(client, "https://localhost:\(server.port)/json", body: "[14]")) == "[14]")
        #expect(server.accepted == 2, "one connection an origin, kept")
        client.shutdown()
        await server.stop()

        let (other, otherCertificates) = try await tlsServer("DNS:other.example")
        var otherConfiguration = TLSConfiguration.makeClientConfiguration()
        otherConfiguration.trustRoots = .certificates(otherCertificates)
        let otherClient = try DownstreamHTTPClient(readTimeout: .seconds(10), tls: otherConfiguration)
        for url in ["https://127.0.0.1:\(other.port)/json", "https://localhost:\(other.port)/json"] {
            await #expect(throws: DownstreamHTTPFailure.unreachable) { try await post(otherClient, url) }
        }
        #expect(other.requests == 0)
        otherClient.shutdown()
        await other.stop()
    }

    @Test func tlsToAServerThatDoesNotSpeakItFailsClosed() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        await #expect(throws: DownstreamHTTPFailure.unreachable) { try await post(client, "https://127.0.0.1:\(server.port)/json") }
        client.shutdown()
        await server.stop()
    }

    @Test func aHeaderValueWithALineBreakIsNeverSent() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        await #expect(throws: DownstreamHTTPFailure.invalidRequest) {
            try await post(client, server.url("/json"), headers: ["X-Token": "a\r\nX-Injected: yes"])
        }
        #expect(text(try await post(client, server.url("/json"), body: "[6]")) == "[6]")
        #expect(server.requests == 1, "the refused request never reached the server")
        client.shutdown()
        await server.stop()
    }

    @Test func anAnswerWithAnInvalidHeaderIsTheServersFaultNotTheRequests() async throws {
        let server = try await HTTPTestServer.start()
        let client = DownstreamHTTPClient(readTimeout: .seconds(10))
        await #expect(throws: DownstreamHTTPFailure.unreachable) { try await post(client, server.url("/bad-header")) }
        #expect(server.requests == 1)
        #expect(await eventually { server.closed == 1 })
        client.shutdown()
        await server.stop()
    }

    @Test func targetsAreReadFromHTTPAndHTTPSURLsOnly() throws {
        let plain = try DownstreamHTTPTarget(url: "http://example.com/mcp")
        #expect(plain.secure == false && plain.host == "example.com" && plain.port == 80)
        #expect(plain.path == "/mcp" && plain.authority == "example.com")
        let secure = try DownstreamHTTPTarget(url: "HTTPS://user:secret@example.com:8443?key=a%20b")
        #expect(secure.secure && secure.port == 8443 && secure.path == "/?key=a%20b" && secure.authority == "example.com:8443")
        let literal = try DownstreamHTTPTarget(url: "http://[::1]:9000/m")
        #expect(literal.host == "::1" && literal.authority == "[::1]:9000" && literal.isIPAddress)
        #expect(try DownstreamHTTPTarget(url: "https://10.0.0.1/").isIPAddress)
        #expect(try !DownstreamHTTPTarget(url: "https://a1.example/").isIPAddress)
        // What may be logged of it leaves out the path and query (a credential may be in them).
        #expect(secure.description == "https://example.com:8443")
        #expect("\(plain)" == "http://example.com")
        for url in ["ftp://example.com/", "example.com/mcp", "http:///mcp", "not a url"] {
            #expect(throws: DownstreamHTTPFailure.invalidURL) { try DownstreamHTTPTarget(url: url) }
        }
    }
}
