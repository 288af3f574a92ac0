import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing
import WardenContracts
import WardenNATS
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// Credentials injected at execution time, through the real processes: the vault holds the key, the
/// gateway injects it into a stdio server's environment and an HTTP server's headers, and the
/// official Python client, calling tools built to leak the key, never receives it.
@Suite(.serialized) struct CredentialInjectionTests {
    static let key = "sk-demo-5f0c1e9a7b3d42e8a6c0f19d2b7e4a13"
    static let rotatedKey = "sk-demo-rotated-9d8c7b6a5f4e3d2c1b0a"

    static func fingerprint(_ value: String) -> String {
        SHA256.hash(data: Data(value.utf8)).map { String(format: "%02x", $0) }.joined().prefix(12).description
    }

    /// Every form of `value` a leak could take.
    static func forms(_ value: String) -> [String] {
        let bytes = Data(value.utf8)
        return [
            value, bytes.base64EncodedString(),
            bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: ""),
            bytes.map { String(format: "%02x", $0) }.joined(),
            // As Python's quote(value, safe="") writes it.
            value.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "-._~").union(.alphanumerics)) ?? value,
        ]
    }

    func admin(_ mesh: TestMesh, _ method: HTTPMethod, _ path: String, _ body: String? = nil, url: String? = nil) async throws -> (
        status: Int, body: String
    ) {
        var request = HTTPClientRequest(url: (url ?? mesh.gatewayURL) + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(TestMesh.adminToken)")
        request.headers.add(name: "Content-Type", value: "application/json")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    func setSecret(_ mesh: TestMesh, _ path: String, _ value: String) async throws {
        let stored = try await admin(
            mesh, .POST, "/admin/v1/secrets", #"{"org": "acme", "path": "\#(path)", "value": "\#(Data(value.utf8).base64EncodedString())"}"#)
        #expect(stored.status == 200, "\(stored.body)")
    }

    /// Runs the Python client against `url`, calling `tools` of `server`; its whole output.
    func callTools(_ url: String, _ server: String, _ tools: [String]) async throws -> (status: Int32?, output: String) {
        try await runPythonCheck("mcp_credential_check.py", [url, server] + tools, timeout: .seconds(90))
    }

    func received(_ output: String) -> [String: [String: Any]] {
        let line = output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String: Any]]) ?? [:]
    }

    func text(_ answers: [String: [String: Any]], _ tool: String) -> String { (answers[tool]?["text"] as? String) ?? "" }

    /// The credential server over Streamable HTTP (answers as SSE streams), on a free port.
    func httpServer() async throws -> (ChildProcess, String) {
        let port = freePort()
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/credential_echo_server.py").path
        let child = try ChildProcess(
            name: "credential-echo", executable: URL(fileURLWithPath: try StdioServerTests.python), arguments: [script, "\(port)"])
        let url = "http://127.0.0.1:\(port)/mcp"
        let answering = await eventually(timeout: .seconds(60)) {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            return (try? await HTTPClient.shared.execute(request, timeout: .seconds(2))) != nil
        }
        #expect(answering, "the credential server did not start: \(child.output)")
        return (child, url)
    }

    @Test func anAgentUsesTheKeyButNeverReceivesItAndChangesReachEveryReplica() async throws {
        let (http, httpURL) = try await httpServer()
        defer { kill(http.pid, SIGKILL) }
        let python = try StdioServerTests.python
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/credential_echo_server.py").path
        try await withMesh { mesh in
            try mesh.start(.gateway)
            let secondPort = freePort()
            try mesh.start(.gateway, name: "gateway-2", extra: ["WARDEN_HTTP_PORT": "\(secondPort)"])
            let secondURL = "http://127.0.0.1:\(secondPort)"
            try await mesh.withAgent {
                try await setSecret(mesh, "demo/api-key", Self.key)

                // A literal credential is refused, with what to do instead.
                let literal = try await admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "plain", "org": "acme", "url": "\#(httpURL)", "headers": {"Authorization": "Bearer \#(Self.key)"}}"#)
                #expect(literal.status == 400 && literal.body.contains("warden secret set"), "\(literal.body)")
                #expect(!literal.body.contains(Self.key))
                let badReference = try await admin(
                    mesh, .POST, "/admin/v1/servers", #"{"id": "bad", "org": "acme", "command": "true", "env": {"K": "${secret://a/../b}"}}"#)
                #expect(badReference.status == 400 && badReference.body.contains("not a secret path"), "\(badReference.body)")

                let web = try await admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "web", "org": "acme", "url": "\#(httpURL)", "headers": {"Authorization": "Bearer ${secret://demo/api-key}"}}"#)
                #expect(web.status == 201 && web.body.contains("secret://demo/api-key"), "\(web.body)")
                let local = try await admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "local", "org": "acme", "command": "\#(python)", "args": ["\#(script)", "stdio"], "env": {"API_KEY": "secret://demo/api-key"}}"#
                )
                #expect(local.status == 201, "\(local.body)")
                for url in [mesh.gatewayURL, secondURL] {
                    let ready = await eventually(timeout: .seconds(60)) {
                        let body = (try? await admin(mesh, .GET, "/admin/v1/servers", url: url))?.body ?? ""
                        return body.components(separatedBy: "\"ready\"").count - 1 >= 2
                    }
                    #expect(ready, "both servers ready on \(url)")
                }

                let leaks = ["whoami", "request_headers", "environment", "encodings", "split_key", "fail_with_key"]
                for (server, tools) in [("web", leaks.filter { $0 != "environment" }), ("local", leaks.filter { $0 != "request_headers" })] {
                    let run = try await callTools(mesh.gatewayURL + "/mcp", server, tools)
                    #expect(run.status == 0, "\(server): \(run.output)")
                    for form in Self.forms(Self.key) { #expect(!run.output.contains(form), "\(server) leaked \(form): \(run.output)") }
                    let answers = received(run.output)
                    #expect(answers["whoami"]?["text"] as? String == "authorized, key \(Self.fingerprint(Self.key))", "\(run.output)")
                    let redacted = "[redacted:demo/api-key]"
                    #expect(text(answers, "encodings").contains(redacted), "\(run.output)")
                    #expect(text(answers, "fail_with_key").contains(redacted), "\(run.output)")
                    #expect(answers["fail_with_key"]?["error"] as? Bool == true)
                    let progress = (answers["split_key"]?["progress"] as? [String] ?? [])
                    #expect(progress.count == 2 && progress.allSatisfy { $0.contains(redacted) }, "both halves are redacted: \(progress)")
                    let middle = Self.key.index(Self.key.startIndex, offsetBy: Self.key.count / 2)
                    for half in [String(Self.key[..<middle]), String(Self.key[middle...])] {
                        #expect(!run.output.contains(half), "\(server) leaked half the key: \(half)")
                    }
                    #expect(answers["split_key"]?["text"] as? String == "done", "\(run.output)")
                    let echoed = text(answers, server == "web" ? "request_headers" : "environment")
                    #expect(echoed.contains(redacted), "\(server): \(echoed)")
                }

                // A server that takes its key in the URL's query: injected there, percent-encoded,
                // and scrubbed from what comes back; a literal key in a query is refused.
                let inQuery = try await admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "query", "org": "acme", "url": "\#(httpURL)?api_key=${secret://demo/api-key}&mode=on"}"#)
                #expect(inQuery.status == 201 && inQuery.body.contains("secret://demo/api-key"), "\(inQuery.body)")
                #expect(!inQuery.body.contains("api_key="), "the registry shows no query: \(inQuery.body)")
                let literalQuery = try await admin(
                    mesh, .POST, "/admin/v1/servers", #"{"id": "leaky", "org": "acme", "url": "\#(httpURL)?api_key=\#(Self.key)"}"#)
                #expect(literalQuery.status == 400 && literalQuery.body.contains("servers/leaky/query/api_key"), "\(literalQuery.body)")
                #expect(!literalQuery.body.contains(Self.key))
                let inPath = try await admin(
                    mesh, .POST, "/admin/v1/servers", #"{"id": "pathref", "org": "acme", "url": "http://127.0.0.1/${secret://demo/api-key}"}"#)
                #expect(inPath.status == 400 && inPath.body.contains("go in its query"), "\(inPath.body)")
                let queried = await eventually(timeout: .seconds(60)) {
                    let run = try? await callTools(mesh.gatewayURL + "/mcp", "query", ["whoami", "request_url"])
                    return self.received(run?.output ?? "")["whoami"]?["text"] as? String == "authorized, key \(Self.fingerprint(Self.key))"
                }
                #expect(queried, "the key reaches the server in the query")
                let url = try await callTools(mesh.gatewayURL + "/mcp", "query", ["request_url"])
                #expect(text(received(url.output), "request_url").contains("api_key=[redacted:demo/api-key]&mode=on"), "\(url.output)")
                for form in Self.forms(Self.key) { #expect(!url.output.contains(form), "query leaked \(form): \(url.output)") }

                // A new value takes effect on the next call, on the other replica too; the stdio
                // server restarts with it, and a call in flight on the old process finishes there.
                let second = try #require(mesh.processes["gateway-2"])
                async let slow = callTools(secondURL + "/mcp", "local", ["slow_whoami"])
                let inFlight = await eventually(timeout: .seconds(60)) { second.output.contains("slow call started with key") }
                #expect(inFlight, "the slow call reached the server: \(second.output.suffix(1500))")
                #expect(second.output.contains("slow call started with key [redacted:demo/api-key]"), "the server's stderr is redacted in the log")
                try await setSecret(mesh, "demo/api-key", Self.rotatedKey)
                let slowRun = try await slow
                #expect(
                    received(slowRun.output)["slow_whoami"]?["text"] as? String == "authorized, key \(Self.fingerprint(Self.key))",
                    "the call in flight finished on the old process: \(slowRun.output)")
                for server in ["web", "local"] {
                    let rotated = await eventually(timeout: .seconds(30)) {
                        let run = try? await callTools(secondURL + "/mcp", server, ["whoami"])
                        return self.received(run?.output ?? "")["whoami"]?["text"] as? String
                            == "authorized, key \(Self.fingerprint(Self.rotatedKey))"
                    }
                    #expect(rotated, "\(server) uses the new value through the second replica")
                }
                let again = try await callTools(secondURL + "/mcp", "web", ["encodings"])
                for form in Self.forms(Self.rotatedKey) { #expect(!again.output.contains(form), "leaked \(form): \(again.output)") }

                // A deleted secret makes calls fail, saying which secret to configure.
                let deleted = try await admin(mesh, .POST, "/admin/v1/secrets/delete", #"{"org": "acme", "path": "demo/api-key"}"#)
                #expect(deleted.status == 200, "\(deleted.body)")
                let failing = await eventually(timeout: .seconds(10)) {
                    let run = try? await callTools(mesh.gatewayURL + "/mcp", "web", ["whoami"])
                    return run?.status != 0 && (run?.output ?? "").contains("secret://demo/api-key") && (run?.output ?? "").contains("deleted")
                }
                #expect(failing, "a call after the delete fails with a clear error")

                // Neither the database nor any log holds a value.
                let dump = try await VaultSecretsTests().dump(mesh)
                for value in [Self.key, Self.rotatedKey] {
                    for form in Self.forms(value) { #expect(!dump.contains(form), "the database dump holds \(form)") }
                    for (name, child) in mesh.processes { #expect(!child.output.contains(value), "the log of \(name) holds the key") }
                }
            }
        }
    }

    @Test func plaintextValuesOfAnExistingRegistryMoveIntoTheVault() async throws {
        let python = try StdioServerTests.python
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/credential_echo_server.py").path
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try await mesh.withAgent {
                // A row as the gateway wrote it before the vault held credentials.
                let definition =
                    #"{"id": "legacy", "org": "acme", "command": "\#(python)", "args": ["\#(script)", "stdio"], "enabled": true, "expose": {}, "env": {"API_KEY": "\#(Self.key)", "MODE": "on"}}"#
                await mesh.processes["gateway"]?.stop(signal: SIGTERM)
                _ = try await withDatabaseClient(mesh.database, as: .gateway) { client in
                    try await client.query(
                        "INSERT INTO mcp_servers (id, definition) VALUES ('legacy', \(definition)::jsonb)", logger: TestEnvironment.logger)
                    return 0
                }
                #expect(try await VaultSecretsTests().dump(mesh).contains(Self.key), "the seeded row holds the plaintext value")

                try mesh.start(.gateway)
                let moved = await eventually(timeout: .seconds(60)) {
                    let body = (try? await admin(mesh, .GET, "/admin/v1/servers/legacy"))?.body ?? ""
                    return body.contains("secret://servers/legacy/env/API_KEY") && body.contains("\"ready\"")
                }
                #expect(moved, "the value moved and the server runs: \(mesh.processes["gateway"]?.output.suffix(2000) ?? "")")
                let run = try await callTools(mesh.gatewayURL + "/mcp", "legacy", ["whoami", "environment"])
                #expect(received(run.output)["whoami"]?["text"] as? String == "authorized, key \(Self.fingerprint(Self.key))", "\(run.output)")
                #expect(!run.output.contains(Self.key))
                #expect(run.output.contains("\\\"MODE\\\": \\\"on\\\""), "short values stay literal: \(run.output)")
                let dump = try await VaultSecretsTests().dump(mesh)
                for form in Self.forms(Self.key) { #expect(!dump.contains(form), "the database dump holds \(form)") }
            }
        }
    }

    @Test func noOtherServiceCanReadASecretOverNATS() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.gateway)
            try await mesh.waitFor("the vault", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
            let gateway = try await mesh.nats.connect(as: .gateway, name: "test-gateway")
            defer { gateway.close() }
            func read(_ bus: NATSConnection, caller: String) async -> Result<String, ServiceError> {
                do {
                    let value = try await ServiceClient(bus: bus, caller: caller).call(
                        SecretEndpoints.read, SecretReference(org: "acme", path: "demo/api-key"), timeout: .seconds(2))
                    return .success(String(decoding: Data(base64Encoded: value.value) ?? Data(), as: UTF8.self))
                } catch {
                    return .failure(error)
                }
            }
            // Another service listens where values travel (writes carry them, reads answer them),
            // to everything, and where the gateway's replies arrive: NATS delivers it nothing.
            let policy = try await mesh.nats.connect(as: .policy, name: "test-policy")
            defer { policy.close() }
            let spies = try [">", "warden.vault.>", "_INBOX.gateway.>"].map { try policy.subscribe($0, queue: nil) }
            _ = try await ServiceClient(bus: gateway, caller: "gateway/test").call(
                SecretEndpoints.write,
                SecretWrite(org: "acme", path: "demo/api-key", value: Data(Self.key.utf8).base64EncodedString(), actor: "test"))
            #expect(await read(gateway, caller: "gateway/test") == .success(Self.key))

            // Nor can it ask, even claiming to be the gateway: NATS refuses the request itself (the
            // vault, which would answer forbidden, never sees it).
            for caller in ["policy/test", "gateway/forged"] {
                guard case .failure(let error) = await read(policy, caller: caller) else {
                    Issue.record("the policy service's user read a secret as \(caller)")
                    continue
                }
                #expect(error.code == .timeout, "\(error)")
            }
            let pretending = try await connectNATS(mesh.nats.url, name: "test-pretender") { configuration in
                configuration.credentials = ("audit", mesh.nats.passwords[.audit] ?? "")
                configuration.inboxScope = "gateway"
            }
            defer { pretending.close() }
            if case .success = await read(pretending, caller: "gateway/forged") {
                Issue.record("a service using the gateway's inboxes read a secret")
            }

            // What it may do still works: it receives on its own subjects.
            let own = try policy.subscribe("warden.policy.test-permissions", queue: nil)
            let delivered = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    var messages = own.makeAsyncIterator()
                    return await messages.next()?.payload == Data("allowed".utf8)
                }
                group.addTask {
                    // Until the subscription has reached the server.
                    for _ in 0..<50 {
                        try? gateway.publish("warden.policy.test-permissions", payload: Data("allowed".utf8))
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(delivered, "the policy service receives on its own subjects")
            own.unsubscribe()
            var seen: [String] = []
            for spy in spies {
                spy.unsubscribe()
                for await message in spy { seen.append(String(decoding: message.payload, as: UTF8.self)) }
            }
            #expect(seen.isEmpty, "the spies received \(seen.count) messages: \(seen.prefix(3))")

            // Without a user nobody connects.
            await #expect(throws: NATSError.self) { _ = try await connectNATS(mesh.nats.url, name: "test-anonymous") }
        }
    }

    /// A user of org acme with an agent: the user's id and the agent's token.
    func member(_ mesh: TestMesh, _ name: String) async throws -> (user: String, token: String) {
        func warden(_ arguments: [String]) async throws -> String {
            let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
            #expect(status == 0, "warden \(arguments.joined(separator: " ")): \(output)")
            return output
        }
        let user = try await warden(["user", "add", "--org", "acme", "--email", "\(name)@acme.example", "--role", "member"])
        let agent = try await warden(["agent", "add", "--org", "acme", "--name", "\(name)-agent", "--owner", user])
        return (user, try await warden(["token", "issue", "--org", "acme", "--agent", agent]))
    }

    @Test func aPerUserServerGivesEachUserTheirOwnCredentialAndNeverAShared() async throws {
        let (http, httpURL) = try await httpServer()
        defer { kill(http.pid, SIGKILL) }
        let python = try StdioServerTests.python
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/credential_echo_server.py").path
        let keys = ["carol": "sk-carol-0a1b2c3d4e5f60718293", "bob": "sk-bob-ffeeddccbbaa99887766"]
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try await mesh.withAgent {
                var members: [String: (user: String, token: String)] = [:]
                for name in ["carol", "bob", "dave"] { members[name] = try await member(mesh, name) }
                for (name, key) in keys { try await setSecret(mesh, "users/\(members[name]!.user)/demo/api-key", key) }
                // An org-wide value at the same path: a per-user server never falls back to it.
                try await setSecret(mesh, "demo/api-key", Self.key)
                for body in [
                    #"{"id": "mine", "org": "acme", "perUser": true, "command": "\#(python)", "args": ["\#(script)", "stdio"], "env": {"API_KEY": "secret://demo/api-key"}}"#,
                    #"{"id": "mineweb", "org": "acme", "perUser": true, "url": "\#(httpURL)", "headers": {"Authorization": "Bearer ${secret://demo/api-key}"}}"#,
                ] {
                    let added = try await admin(mesh, .POST, "/admin/v1/servers", body)
                    #expect(added.status == 201 && added.body.contains("\"perUser\":true"), "\(added.body)")
                }
                for (name, key) in keys {
                    try await TestMesh.$agentToken.withValue(members[name]!.token) {
                        for server in ["mine", "mineweb"] {
                            let run = try await callTools(mesh.gatewayURL + "/mcp", server, ["whoami", "encodings"])
                            #expect(
                                received(run.output)["whoami"]?["text"] as? String == "authorized, key \(Self.fingerprint(key))",
                                "\(name) on \(server): \(run.output)")
                            for form in Self.forms(key) + [Self.key] { #expect(!run.output.contains(form), "\(name) on \(server) received \(form)") }
                        }
                    }
                }
                // A user without the credential is told what to store, and where; no shared value is used.
                try await TestMesh.$agentToken.withValue(members["dave"]!.token) {
                    for server in ["mine", "mineweb"] {
                        let run = try await callTools(mesh.gatewayURL + "/mcp", server, ["whoami"])
                        #expect(run.status != 0, "\(run.output)")
                        #expect(run.output.contains("warden secret set --org acme --user \(members["dave"]!.user) demo/api-key"), "\(run.output)")
                        #expect(!run.output.contains("authorized, key"))
                    }
                }
                // A user who removes their credential loses their instances; the others keep theirs.
                let removed = try await admin(
                    mesh, .POST, "/admin/v1/secrets/delete", #"{"org": "acme", "path": "users/\#(members["carol"]!.user)/demo/api-key"}"#)
                #expect(removed.status == 200, "\(removed.body)")
                try await TestMesh.$agentToken.withValue(members["carol"]!.token) {
                    let refused = await eventually(timeout: .seconds(10)) {
                        let run = try? await callTools(mesh.gatewayURL + "/mcp", "mine", ["whoami"])
                        return run?.status != 0 && (run?.output ?? "").contains("--user \(members["carol"]!.user) demo/api-key")
                    }
                    #expect(refused, "carol's calls fail once her credential is gone")
                }
                try await TestMesh.$agentToken.withValue(members["bob"]!.token) {
                    let run = try await callTools(mesh.gatewayURL + "/mcp", "mine", ["whoami"])
                    #expect(
                        received(run.output)["whoami"]?["text"] as? String == "authorized, key \(Self.fingerprint(keys["bob"]!))", "\(run.output)")
                }
                let gatewayLog = mesh.processes["gateway"]?.output ?? ""
                #expect(gatewayLog.contains("stopping that user's instances"), "carol's instances were stopped")
            }
        }
    }
}
