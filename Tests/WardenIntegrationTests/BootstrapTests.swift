import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing
import WardenContracts
import WardenServiceKit

/// The first start of an empty system: the first org and its owner are created once, and the
/// operator gets one platform admin key, shown once by one gateway, whatever the replicas.
@Suite(.serialized) struct BootstrapTests {
    static func adminKeys(in output: String) -> [String] {
        output.matches(of: /wda_[0-9a-f]{12}_[A-Za-z0-9_-]{32,64}/).map { String($0.output) }
    }

    func admin(_ url: String, _ path: String, key: String, method: HTTPMethod = .GET, body: String? = nil) async throws -> (status: Int, body: String)
    {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test func anEmptySystemGetsItsFirstOrgOwnerAndOneAdminKeyShownOnce() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            // No platform token (test meshes configure one by default): the bootstrap makes a key.
            let bootstrap = ["WARDEN_BOOTSTRAP_ORG": "initech", "WARDEN_BOOTSTRAP_OWNER_EMAIL": "Root@Initech.example", "WARDEN_ADMIN_TOKEN": ""]
            let secondPort = freePort()
            let first = try mesh.start(.gateway, extra: bootstrap)
            let second = try mesh.start(.gateway, name: "gateway-2", extra: bootstrap.merging(["WARDEN_HTTP_PORT": "\(secondPort)"]) { $1 })
            let secondURL = "http://127.0.0.1:\(secondPort)"
            let done = "the system has its first org and an admin credential"
            #expect(
                await eventually(timeout: .seconds(30)) { first.output.contains(done) && second.output.contains(done) },
                "\(first.output)\n\(second.output)")

            // Exactly one key, shown by exactly one replica, exactly once.
            let shown = Self.adminKeys(in: first.output) + Self.adminKeys(in: second.output)
            #expect(shown.count == 1, "\(shown.count) keys shown")
            let key = try #require(shown.first)
            // Shown once on one console, in no log line of any other service, stored only as a keyed hash.
            let secret = String(key.split(separator: "_", maxSplits: 2)[2])
            #expect((first.output + second.output).components(separatedBy: secret).count == 2)
            #expect(mesh.processes.filter { !$0.key.hasPrefix("gateway") }.values.allSatisfy { !$0.output.contains(secret) })
            let stored = try await withDatabaseClient(mesh.database, as: .vault) { client in
                var text = ""
                let rows = try await client.query("SELECT row_to_json(t)::text FROM admin_keys t", logger: TestEnvironment.logger)
                for try await row in rows.decode(String.self) { text += row }
                return text
            }
            #expect(stored.contains(#""label":"bootstrap""#) && !stored.contains(secret), "\(stored)")

            // It is a platform credential on every replica: the first org and its owner are there.
            let orgs = try await runWarden(["org", "list", "--json"], url: mesh.gatewayURL, adminToken: key)
            #expect(orgs.status == 0 && orgs.output.contains(#""id":"initech""#), "\(orgs.output)")
            let users = try await runWarden(["user", "list", "--org", "initech", "--json"], url: secondURL, adminToken: key)
            #expect(
                users.status == 0 && users.output.contains(#""email":"root@initech.example""#) && users.output.contains(#""role":"owner""#),
                "\(users.output)")
            #expect(try await admin(secondURL, "/admin/v1/servers", key: key).status == 200)
            // A near miss is refused.
            #expect(try await admin(mesh.gatewayURL, "/admin/v1/servers", key: String(key.dropLast()) + (key.last == "A" ? "B" : "A")).status == 401)

            // The operator makes a key of their own and revokes the bootstrap one: refused everywhere at once.
            let created = try await runWarden(["admin-key", "create", "--label", "ops team"], url: mesh.gatewayURL, adminToken: key)
            let own = try #require(Self.adminKeys(in: created.output).first, "\(created.output)")
            // With --out the new key goes to a private file, not to the terminal; an existing file is never replaced.
            let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("warden-admin-key-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: keyFile) }
            let filed = try await runWarden(["admin-key", "create", "--label", "ci", "--out", keyFile.path], url: mesh.gatewayURL, adminToken: own)
            let filedKey = try #require(Self.adminKeys(in: try String(contentsOf: keyFile, encoding: .utf8)).first)
            #expect(filed.status == 0 && Self.adminKeys(in: filed.output).isEmpty && filed.output.contains("mode 0600"), "\(filed.output)")
            #expect(try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int == 0o600)
            #expect(try await admin(mesh.gatewayURL, "/admin/v1/servers", key: filedKey).status == 200)
            let again = try await runWarden(["admin-key", "create", "--label", "ci-2", "--out", keyFile.path], url: mesh.gatewayURL, adminToken: own)
            #expect(again.status != 0 && again.output.contains("exists"), "\(again.output)")
            #expect(
                try await runWarden(["admin-key", "list"], url: mesh.gatewayURL, adminToken: own).output.contains("ci-2") == false,
                "refused before any key was made")
            let bootstrapID = String(key.split(separator: "_")[1])
            let listed = try await runWarden(["admin-key", "list"], url: mesh.gatewayURL, adminToken: own)
            #expect(
                listed.output.contains("bootstrap") && listed.output.contains("ops team") && Self.adminKeys(in: listed.output).isEmpty,
                "\(listed.output)")
            #expect(try await runWarden(["admin-key", "revoke", bootstrapID], url: mesh.gatewayURL, adminToken: own).status == 0)
            #expect(await eventually(timeout: .seconds(1)) { (try? await admin(secondURL, "/admin/v1/servers", key: key).status) == 401 })
            #expect(try await admin(secondURL, "/admin/v1/servers", key: own).status == 200)

            // Restarted replicas find a bootstrapped system: nothing is created or shown again.
            await first.stop()
            let restarted = try mesh.start(.gateway, name: "gateway-restarted", extra: bootstrap)
            #expect(await eventually(timeout: .seconds(30)) { restarted.output.contains(done) })
            #expect(Self.adminKeys(in: restarted.output).isEmpty && !restarted.output.contains("created the first org"))
            let orgList = try await admin(mesh.gatewayURL, "/admin/v1/orgs", key: own)
            #expect(orgList.body.components(separatedBy: #""id":"#).count == 2, "one org: \(orgList.body)")
        }
    }

    @Test func anOperatorCredentialMeansNoKeyIsMadeAndTheFileOptionKeepsItOffTheConsole() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bootstrap-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: file) }
            let done = "the system has its first org and an admin credential"
            // With WARDEN_ADMIN_TOKEN: the org and owner are made, no key.
            let withToken = try mesh.start(
                .gateway, extra: ["WARDEN_ADMIN_TOKEN": AgentAuthenticationTests.adminToken, "WARDEN_BOOTSTRAP_CREDENTIAL_FILE": file.path])
            #expect(await eventually(timeout: .seconds(30)) { withToken.output.contains(done) }, "\(withToken.output)")
            #expect(!FileManager.default.fileExists(atPath: file.path) && Self.adminKeys(in: withToken.output).isEmpty)
            let orgs = try await admin(mesh.gatewayURL, "/admin/v1/orgs", key: AgentAuthenticationTests.adminToken)
            #expect(orgs.body.contains(#""id":"default""#), "\(orgs.body)")
            await withToken.stop()

            // Without it, a later start makes the key and writes it to the file (mode 0600), not the console.
            let withFile = try mesh.start(
                .gateway, name: "gateway-file", extra: ["WARDEN_BOOTSTRAP_CREDENTIAL_FILE": file.path, "WARDEN_ADMIN_TOKEN": ""])
            #expect(await eventually(timeout: .seconds(30)) { withFile.output.contains(done) }, "\(withFile.output)")
            let written = try String(contentsOf: file, encoding: .utf8)
            let key = try #require(Self.adminKeys(in: written).first)
            #expect(Self.adminKeys(in: withFile.output).isEmpty, "the key stays off the console")
            let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            #expect(try await admin(mesh.gatewayURL, "/admin/v1/orgs", key: key).status == 200)
        }
    }
}
