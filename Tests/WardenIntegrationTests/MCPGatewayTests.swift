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
    func withGateway(_ body: (TestMesh) async throws -> Void) async throws {
        try await withMesh { mesh in
            let python = try StdioServerTests.python
            let servers = FileManager.default.temporaryDirectory.appendingPathComponent("warden-servers-\(UUID().uuidString).json")
            let file = #"{"servers": [{"id": "time", "command": "\#(python)", "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}]}"#
            try Data(file.utf8).write(to: servers)
            defer { try? FileManager.default.removeItem(at: servers) }
            try mesh.start(.gateway, extra: ["WARDEN_MCP_SERVERS_FILE": servers.path])
            try await mesh.waitFor("the gateway", timeout: .seconds(30)) { $0.gateway.ready }
            try await body(mesh)
        }
    }

    func runClient(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/mcp_client_check.py").path
        let child = try ChildProcess(name: "python-client", executable: URL(fileURLWithPath: try StdioServerTests.python), arguments: [script] + arguments)
        let status = await child.waitForExit(timeout: .seconds(60))
        return (status, child.output)
    }

    @Test func officialPythonClientThroughTheGatewayEqualsADirectConnection() async throws {
        try await withGateway { mesh in
            let arguments = #"{"source_timezone": "UTC", "time": "12:30", "target_timezone": "Asia/Tokyo"}"#
            // Wait until the downstream server is ready (its tools appear).
            var through: (status: Int32?, output: String) = (nil, "")
            for _ in 0..<30 {
                through = try await runClient([mesh.gatewayURL + "/mcp", "auto", "time__convert_time", arguments])
                if through.status == 0 { break }
                try await Task.sleep(for: .seconds(1))
            }
            #expect(through.status == 0, "\(through.output)")
            let legacy = try await runClient([mesh.gatewayURL + "/mcp", "legacy", "time__convert_time", arguments])
            #expect(legacy.status == 0, "\(legacy.output)")
            let python = try StdioServerTests.python
            let direct = try await runClient(["stdio:[\"\(python)\", \"-m\", \"mcp_server_time\", \"--local-timezone\", \"UTC\"]", "legacy", "convert_time", arguments])
            #expect(direct.status == 0, "\(direct.output)")

            let viaGateway = try JSONSerialization.jsonObject(with: Data(through.output.utf8)) as? [String: Any]
            let viaLegacy = try JSONSerialization.jsonObject(with: Data(legacy.output.utf8)) as? [String: Any]
            let directly = try JSONSerialization.jsonObject(with: Data(direct.output.utf8)) as? [String: Any]
            let tools = viaGateway?["tools"] as? [String]
            #expect(tools?.contains("time__convert_time") == true && tools?.contains("time__get_current_time") == true)
            #expect((directly?["tools"] as? [String])?.map { "time__\($0)" } == tools)
            // The tool result passes through field for field.
            #expect(NSDictionary(dictionary: viaGateway?["call"] as? [String: Any] ?? [:]) == NSDictionary(dictionary: directly?["call"] as? [String: Any] ?? [:]))
            #expect(NSDictionary(dictionary: viaLegacy?["call"] as? [String: Any] ?? [:]) == NSDictionary(dictionary: directly?["call"] as? [String: Any] ?? [:]))
        }
    }

    @Test func malformedRequestsGetClearErrors() async throws {
        try await withGateway { mesh in
            let url = mesh.gatewayURL + "/mcp"
            func post(_ body: String, headers: [(String, String)] = [("Content-Type", "application/json")]) async throws -> (Int, String) {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                return (Int(response.status.code), text)
            }
            let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#
            let cases: [(String, [(String, String)], Int, String)] = [
                ("{not json", [("Content-Type", "application/json")], 400, "-32700"),
                (#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, [("Content-Type", "application/json")], 400, "batches are not supported"),
                (#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, [("Content-Type", "application/json")], 400, "-32600"),
                (initialize, [("Content-Type", "text/plain")], 415, "Content-Type"),
                (initialize, [("Content-Type", "application/json"), ("Origin", "https://evil.example")], 403, "Origin"),
                (initialize, [("Content-Type", "application/json"), ("MCP-Protocol-Version", "1999-01-01")], 400, "unsupported MCP-Protocol-Version"),
                (#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, [("Content-Type", "application/json")], 400, "Mcp-Session-Id header is required"),
                (#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, [("Content-Type", "application/json"), ("Mcp-Session-Id", String(repeating: "a", count: 64))], 404, "Session not found"),
                (#"{"jsonrpc":"2.0","id":3,"method":"server/discover"}"#, [("Content-Type", "application/json")], 200, "-32601"),
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
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let session = try #require(response.headers.first(name: "Mcp-Session-Id"))
            let withSession = [("Content-Type", "application/json"), ("Mcp-Session-Id", session), ("MCP-Protocol-Version", "2025-06-18")]
            #expect(try await post(#"{"jsonrpc":"2.0","id":4,"method":"no/such"}"#, headers: withSession).1.contains("-32601"))
            #expect(try await post(#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope__x"}}"#, headers: withSession).1.contains("unknown tool"))
            #expect(try await post(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, headers: withSession).0 == 202)
            var delete = HTTPClientRequest(url: url)
            delete.method = .DELETE
            delete.headers.add(name: "Mcp-Session-Id", value: session)
            #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status.code == 204)
            #expect(try await post(#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#, headers: withSession).0 == 404)
        }
    }
}
