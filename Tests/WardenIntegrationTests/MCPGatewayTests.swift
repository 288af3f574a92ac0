import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import WardenContracts

#if canImport(Glibc)
    import Glibc
#endif

/// The gateway process in front of a real stdio MCP server (`mcp-server-time`), driven by the
/// official Python MCP SDK in both its connect modes, compared with a direct connection.
@Suite(.serialized) struct MCPGatewayTests {
    /// A mesh whose gateway fronts mcp-server-time and mcp-server-git (on a fresh repository), and
    /// the Streamable HTTP server at `httpServer` as `web` when given.
    func withGateway(httpServer: String? = nil, _ body: (TestMesh, _ serversFile: String) async throws -> Void) async throws {
        try await withMesh { mesh in
            let python = try StdioServerTests.python
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-mcp-\(UUID().uuidString)")
            let repository = directory.appendingPathComponent("repo")
            try FileManager.default.createDirectory(at: repository, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let git = try ChildProcess(
                name: "git-init", executable: URL(fileURLWithPath: "/usr/bin/git"), arguments: ["init", "-q", repository.path])
            #expect(await git.waitForExit(timeout: .seconds(10)) == 0)
            let servers = directory.appendingPathComponent("servers.json")
            let file = """
                {"servers": [
                  {"id": "time", "command": "\(python)", "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]},
                  {"id": "git", "command": "\(python)", "args": ["-m", "mcp_server_git", "--repository", "\(repository.path)"]}\(httpServer.map { #", {"id": "web", "url": "\#($0)"}"# } ?? "")
                ]}
                """
            try Data(file.utf8).write(to: servers)
            try mesh.start(.gateway, extra: ["WARDEN_MCP_SERVERS_FILE": servers.path])
            try await mesh.waitFor("the gateway", timeout: .seconds(30)) { $0.gateway.ready }
            try await mesh.withAgent { try await body(mesh, servers.path) }
        }
    }

    /// Posts one JSON-RPC message; returns the status, the body and the session header.
    func post(_ url: String, _ body: String, session: String? = nil) async throws -> (status: Int, body: String, session: String?) {
        let answer = try await EventStreamTests.post(url, body, session: session)
        return (answer.status, answer.body, answer.session)
    }

    static let initialize =
        #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#

    /// Polls tools/list until every server's tools are merged in.
    func waitForTools(_ url: String, session: String, _ names: [String]) async throws -> Bool {
        await eventually(timeout: .seconds(30)) {
            guard let list = try? await self.post(url, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: session) else { return false }
            return names.allSatisfy { list.body.contains("\"\($0)\"") }
        }
    }

    func runClient(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/mcp_client_check.py").path
        let child = try ChildProcess(
            name: "python-client", executable: URL(fileURLWithPath: try StdioServerTests.python), arguments: [script] + arguments,
            environment: TestMesh.clientEnvironment)
        let status = await child.waitForExit(timeout: .seconds(60))
        return (status, child.output)
    }

    @Test func officialPythonClientThroughTheGatewayEqualsADirectConnection() async throws {
        let (web, webURL) = try await HTTPDownstreamTests.benchServer("streamable-http")
        defer { kill(web.pid, SIGKILL) }
        try await withGateway(httpServer: webURL) { mesh, serversFile in
            let arguments = #"{"source_timezone": "UTC", "time": "12:30", "target_timezone": "Asia/Tokyo"}"#
            let probe = try #require(try await post(mesh.gatewayURL + "/mcp", Self.initialize).session)
            #expect(try await waitForTools(mesh.gatewayURL + "/mcp", session: probe, ["time__convert_time", "git__git_status"]))
            // The servers' tools are listed: the first call through the gateway must succeed.
            let through = try await runClient([mesh.gatewayURL + "/mcp", "auto", "time__convert_time", arguments])
            #expect(through.status == 0, "\(through.output)")
            let legacy = try await runClient([mesh.gatewayURL + "/mcp", "legacy", "time__convert_time", arguments])
            #expect(legacy.status == 0, "\(legacy.output)")
            // A client that can only launch a process goes through `warden connect`.
            let warden = try TestEnvironment.binaries.appendingPathComponent("warden").path
            let bridge = "stdio:[\"\(warden)\", \"connect\", \"--url\", \"\(mesh.gatewayURL)\"]"
            let bridged = try await runClient([bridge, "legacy", "time__convert_time", arguments])
            #expect(bridged.status == 0, "\(bridged.output)")
            let bridgedAuto = try await runClient([bridge, "auto", "time__convert_time", arguments])
            #expect(bridgedAuto.status == 0, "\(bridgedAuto.output)")
            let python = try StdioServerTests.python
            let server = "stdio:[\"\(python)\", \"-m\", \"mcp_server_time\", \"--local-timezone\", \"UTC\"]"
            let direct = try await runClient([server, "legacy", "convert_time", arguments])
            #expect(direct.status == 0, "\(direct.output)")
            let directAuto = try await runClient([server, "auto", "convert_time", arguments])
            #expect(directAuto.status == 0, "\(directAuto.output)")

            func parse(_ output: String) throws -> [String: Any] {
                try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] ?? [:]
            }
            /// The call result, without the stateless era's stamp naming the server the client talked to.
            func call(_ result: [String: Any]) -> NSDictionary {
                var call = result["call"] as? [String: Any] ?? [:]
                if var meta = call["_meta"] as? [String: Any] {
                    meta["io.modelcontextprotocol/serverInfo"] = nil
                    call["_meta"] = meta.isEmpty ? nil : meta
                }
                return NSDictionary(dictionary: call)
            }
            let viaGateway = try parse(through.output), viaLegacy = try parse(legacy.output), viaBridge = try parse(bridged.output),
                viaBridgeAuto = try parse(bridgedAuto.output)
            let directly = try parse(direct.output), directlyAuto = try parse(directAuto.output)
            let tools = viaGateway["tools"] as? [String]
            #expect(tools?.contains("time__convert_time") == true && tools?.contains("git__git_status") == true)
            #expect((directly["tools"] as? [String]).map { Set($0.map { "time__\($0)" }) }?.isSubset(of: Set(tools ?? [])) == true)
            // Auto mode probes server/discover and stays in the stateless era; legacy mode does the handshake.
            #expect(viaGateway["protocol"] as? String == "2026-07-28" && directlyAuto["protocol"] as? String == "2026-07-28")
            #expect((viaLegacy["protocol"] as? String).map { $0.hasPrefix("2025-") } == true)
            // The tool result passes through field for field, compared with a direct connection in the same era.
            #expect(call(viaGateway) == call(directlyAuto))
            #expect(call(viaLegacy) == call(directly))
            #expect(call(viaBridge) == call(directly))
            #expect(viaBridge["tools"] as? [String] == tools)
            #expect(call(viaBridgeAuto) == call(directlyAuto) && viaBridgeAuto["protocol"] as? String == "2026-07-28")
            #expect(tools?.contains("web__echo") == true, "the Streamable HTTP server's tools are merged too")

            // Every server, each era: the same result through the gateway as directly.
            let repository = try #require(try String(contentsOfFile: serversFile, encoding: .utf8).firstMatch(of: /"--repository", "([^"]+)"/)?.1)
            let cases: [(server: String, target: String, tool: String, arguments: String)] = [
                (
                    "git", "stdio:[\"\(python)\", \"-m\", \"mcp_server_git\", \"--repository\", \"\(repository)\"]", "git_status",
                    #"{"repo_path": "\#(repository)"}"#
                ),
                ("web", webURL, "echo", #"{"text": "across the gateway"}"#),
            ]
            for (server, target, tool, arguments) in cases {
                for mode in ["auto", "legacy"] {
                    let gateway = try await runClient([mesh.gatewayURL + "/mcp", mode, "\(server)__\(tool)", arguments])
                    let direct = try await runClient([target, mode, tool, arguments])
                    #expect(gateway.status == 0 && direct.status == 0, "\(server) \(mode): \(gateway.output) / \(direct.output)")
                    var viaGateway = call(try parse(gateway.output)), directly = call(try parse(direct.output))
                    // A handshake-only server answers a stateless client's probe in the old era: compare content, not era fields.
                    if mode == "auto" && server == "web" {
                        viaGateway = NSDictionary(dictionary: (viaGateway as? [String: Any] ?? [:]).filter { $0.key != "resultType" })
                        directly = NSDictionary(dictionary: (directly as? [String: Any] ?? [:]).filter { $0.key != "resultType" })
                    }
                    #expect(viaGateway == directly, "\(server) \(mode): \(gateway.output) vs \(direct.output)")
                }
            }
        }
    }

    /// Headers of a stateless (2026-07-28) request.
    static func stateless(_ method: String, name: String? = nil) -> [(String, String)] {
        [("Content-Type", "application/json"), ("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", method)]
            + (name.map { [("Mcp-Name", $0)] } ?? [])
    }

    /// A stateless request body with its `_meta` envelope.
    static func statelessBody(id: Int, _ method: String, _ params: String = "") -> String {
        let meta = #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#
        return #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":{\#(params.isEmpty ? "" : params + ",")\#(meta)}}"#
    }

    @Test func malformedRequestsGetClearErrors() async throws {
        try await withGateway { mesh, _ in
            let url = mesh.gatewayURL + "/mcp"
            func post(_ body: String, headers: [(String, String)] = [("Content-Type", "application/json")]) async throws -> (Int, String) {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await HTTPClient.shared.execute(request.authorized(), timeout: .seconds(10))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                return (Int(response.status.code), text)
            }
            let initialize =
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#
            let cases: [(String, [(String, String)], Int, String)] = [
                ("{not json", [("Content-Type", "application/json")], 400, "-32700"),
                (#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, [("Content-Type", "application/json")], 400, "batches are not supported"),
                (#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, [("Content-Type", "application/json")], 400, "-32600"),
                (initialize, [("Content-Type", "text/plain")], 415, "Content-Type"),
                (initialize, [("Content-Type", "application/json"), ("Origin", "https://evil.example")], 403, "Origin"),
                (initialize, [("Content-Type", "application/json"), ("MCP-Protocol-Version", "1999-01-01")], 400, "-32022"),
                (
                    #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, [("Content-Type", "application/json")], 400,
                    "Mcp-Session-Id header is required"
                ),
                (
                    #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
                    [("Content-Type", "application/json"), ("Mcp-Session-Id", String(repeating: "a", count: 64))], 404, "Session not found"
                ),
                (
                    #"{"jsonrpc":"2.0","id":3,"method":"server/discover"}"#, [("Content-Type", "application/json")], 400,
                    "Mcp-Session-Id header is required"
                ),
                // The stateless era: the envelope, the routing headers and the version are checked in that order.
                (#"{"jsonrpc":"2.0","id":4,"method":"server/discover"}"#, Self.stateless("server/discover"), 400, "params._meta must be an object"),
                (Self.statelessBody(id: 5, "server/discover"), Self.stateless("tools/list"), 400, "-32020"),
                (
                    Self.statelessBody(id: 6, "tools/call", #""name":"time__get_current_time","arguments":{}"#),
                    Self.stateless("tools/call", name: "time__other"), 400, "Mcp-Name header does not match"
                ),
                (Self.statelessBody(id: 7, "nope/nothing"), Self.stateless("nope/nothing"), 404, "-32601"),
                (Self.statelessBody(id: 8, "server/discover"), Self.stateless("server/discover"), 200, "\"supportedVersions\""),
                (String(repeating: " ", count: 5 << 20), [("Content-Type", "application/json")], 413, "larger than"),
            ]
            for (body, headers, status, expected) in cases {
                let (code, text) = try await post(body, headers: headers)
                #expect(code == status && text.contains(expected), "\(body.prefix(60)) → \(code) \(text)")
            }
            // A session: unknown methods and tools get JSON-RPC errors; DELETE ends it.
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: initialize))
            let response = try await HTTPClient.shared.execute(request.authorized(), timeout: .seconds(10))
            let session = try #require(response.headers.first(name: "Mcp-Session-Id"))
            let withSession = [("Content-Type", "application/json"), ("Mcp-Session-Id", session), ("MCP-Protocol-Version", "2025-06-18")]
            #expect(try await post(#"{"jsonrpc":"2.0","id":4,"method":"no/such"}"#, headers: withSession).1.contains("-32601"))
            #expect(
                try await post(#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope__x"}}"#, headers: withSession).1.contains(
                    "unknown tool"))
            #expect(try await post(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, headers: withSession).0 == 202)
            #expect(
                try await post(#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}"#, headers: withSession).1
                    .contains("-32002"))
            #expect(
                try await post(#"{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"cursor":"o-3"}}"#, headers: withSession).1.contains(
                    "invalid cursor"))
            // GET: the standing stream needs Accept, a session, and a well-formed Last-Event-ID.
            func get(_ headers: [(String, String)]) async throws -> Int {
                var request = HTTPClientRequest(url: url)
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                return Int(try await HTTPClient.shared.execute(request.authorized(), timeout: .seconds(10)).status.code)
            }
            #expect(try await get([("Mcp-Session-Id", session)]) == 406)
            #expect(try await get([("Accept", "text/event-stream")]) == 400)
            #expect(try await get([("Accept", "text/event-stream"), ("Mcp-Session-Id", String(repeating: "b", count: 64))]) == 404)
            #expect(try await get([("Accept", "text/event-stream"), ("Mcp-Session-Id", session), ("Last-Event-ID", "../../etc")]) == 400)
            #expect(try await get([("Accept", "text/event-stream"), ("MCP-Protocol-Version", "2026-07-28")]) == 405)
            var delete = HTTPClientRequest(url: url)
            delete.method = .DELETE
            delete.headers.add(name: "Mcp-Session-Id", value: session)
            #expect(try await HTTPClient.shared.execute(delete.authorized(), timeout: .seconds(10)).status.code == 204)
            #expect(try await post(#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#, headers: withSession).0 == 404)
        }
    }

    @Test func aSessionStartedOnOneGatewayIsServedByAnother() async throws {
        try await withGateway { mesh, serversFile in
            let second = try mesh.start(
                .gateway, name: "gateway-2", extra: ["WARDEN_MCP_SERVERS_FILE": serversFile, "WARDEN_HTTP_PORT": "\(freePort())"])
            let secondURL = "http://127.0.0.1:\(try #require(second.port))/mcp"
            let first = try await post(mesh.gatewayURL + "/mcp", Self.initialize)
            let session = try #require(first.session)
            #expect(
                try await waitForTools(secondURL, session: session, ["time__convert_time", "git__git_status"]), "the second replica knows the session"
            )
            let call = try await post(
                secondURL,
                #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"time__convert_time","arguments":{"source_timezone":"UTC","time":"08:00","target_timezone":"Europe/Paris"}}}"#,
                session: session)
            #expect(call.status == 200 && call.body.contains("Europe/Paris"), "\(call.body)")
        }
    }

    @Test func aKilledServerIsRestartedWithoutDisturbingTheOthersAndNothingIsLeftAfterStop() async throws {
        try await withGateway { mesh, _ in
            let url = mesh.gatewayURL + "/mcp"
            let session = try #require(try await post(url, Self.initialize).session)
            #expect(try await waitForTools(url, session: session, ["time__convert_time", "git__git_status"]))
            let servers = try #require(await mesh.status()?.mcpServers)
            #expect(servers.map(\.id) == ["git", "time"] && servers.allSatisfy { $0.state == "ready" && $0.tools > 0 }, "\(servers)")
            let gateway = try #require(mesh.processes["gateway"])
            let children = childProcesses(of: gateway.pid)
            #expect(children.count == 2, "one process per server: \(children)")
            let timeServer = try #require(children.first { commandLine(of: $0).contains("mcp_server_time") })
            kill(-timeServer, SIGKILL)
            let convert =
                #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"time__convert_time","arguments":{"source_timezone":"UTC","time":"08:00","target_timezone":"Asia/Tokyo"}}}"#
            // The other server is unaffected.
            let status = try await post(
                url, #"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"git__git_status","arguments":{"repo_path":"."}}}"#,
                session: session)
            #expect(status.status == 200 && !status.body.contains("MCP server 'git'"), "\(status.body)")
            // Until the restarted server is ready, every call fails with an error naming it; then it is served.
            var unclear: [String] = []
            let restarted = await eventually(timeout: .seconds(30)) {
                guard let answer = try? await self.post(url, convert, session: session) else { return false }
                if answer.body.contains("Asia/Tokyo") { return true }
                if !answer.body.contains("MCP server 'time'") { unclear.append(answer.body) }
                return false
            }
            #expect(restarted, "the time server was restarted")
            #expect(unclear.isEmpty, "answers that did not name the server: \(unclear)")
            #expect(await mesh.status()?.mcpServers?.first { $0.id == "time" }?.restarts == 1)
            let before = childProcesses(of: gateway.pid)
            #expect(await gateway.stop(signal: SIGTERM, timeout: .seconds(15)) == 0)
            let gone = await eventually(timeout: .seconds(5)) { before.allSatisfy { kill($0, 0) != 0 } }
            #expect(gone, "no server process outlives the gateway: \(before)")
        }
    }

    /// Direct children of a process, from /proc.
    func childProcesses(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == parent
        }
    }

    func commandLine(of pid: Int32) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }
}
