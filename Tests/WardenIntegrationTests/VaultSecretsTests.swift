import Crypto
import Foundation
import NIOCore
import PostgresNIO
import Testing
import WardenContracts
import WardenNATS
import WardenServiceKit
import WardenVault

#if canImport(Glibc)
    import Glibc
#endif

/// The vault's secrets and keys, through the real processes: two vault replicas, a gateway, the
/// CLI, services reading over NATS, and PostgreSQL looked at directly.
@Suite(.serialized) struct VaultSecretsTests {
    static let firstRootKey = TestMesh.vaultKey
    static let secondRootKey = Data(repeating: 11, count: 32).base64EncodedString()

    /// Vault replicas `vault-1` and `vault-2` (with `extra` settings) and a gateway; ready when both
    /// vaults have opened their keys.
    func withVaults(_ extra: [String: String] = [:], _ body: (TestMesh) async throws -> Void) async throws {
        try await withMesh { mesh in
            try startVaults(mesh, extra)
            try mesh.start(.gateway)
            try await mesh.waitFor("the gateway and two vaults", timeout: .seconds(60)) { status in
                status.gateway.ready && status.service(.vault)?.readyInstances == 2
            }
            try await body(mesh)
        }
    }

    func startVaults(_ mesh: TestMesh, _ extra: [String: String], suffix: String = "") throws {
        try mesh.start(.vault, name: "vault-1" + suffix, extra: extra)
        try mesh.start(.vault, name: "vault-2" + suffix, extra: extra)
    }

    func warden(_ arguments: [String], _ mesh: TestMesh) async throws -> (status: Int32?, output: String) {
        try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
    }

    /// A file holding `value`, removed after the test.
    func file(_ value: Data) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("warden-secret-\(UUID().uuidString)")
        try value.write(to: url)
        return url
    }

    /// A service's read over NATS: the value, or the vault's error.
    func read(_ bus: NATSConnection, _ path: String, version: Int? = nil, org: String = "acme") async -> Result<String, ServiceError> {
        do {
            let value = try await ServiceClient(bus: bus, caller: "gateway/test-reader").call(
                SecretEndpoints.read, SecretReference(org: org, path: path, version: version))
            return .success(String(decoding: Data(base64Encoded: value.value) ?? Data(), as: UTF8.self))
        } catch {
            return .failure(error)
        }
    }

    func write(_ bus: NATSConnection, _ path: String, _ value: String, org: String = "acme") async throws -> SecretMetadata {
        try await ServiceClient(bus: bus, caller: "test/writer").call(
            SecretEndpoints.write, SecretWrite(org: org, path: path, value: Data(value.utf8).base64EncodedString(), actor: "test"))
    }

    /// Runs SQL on the vault's schema as the vault's own role.
    func sql(_ mesh: TestMesh, _ query: PostgresQuery) async throws {
        try await withDatabaseClient(mesh.database, as: .vault) { client in
            try await client.query(query, logger: TestEnvironment.logger)
            return 0
        }
    }

    /// `pg_dump` of the whole test database (or what `options` choose), as its administrator.
    func dump(_ mesh: TestMesh, _ options: [String] = []) async throws -> String {
        let child = try ChildProcess(
            name: "pg_dump", executable: URL(fileURLWithPath: "/usr/lib/postgresql/15/bin/pg_dump"),
            arguments: ["-h", "127.0.0.1", "-p", "\(try TestEnvironment.postgresPort)", "-U", "warden_admin", "-d", mesh.database.name] + options,
            environment: ["PGPASSWORD": try TestEnvironment.adminPassword])
        #expect(await child.waitForExit(timeout: .seconds(60)) == 0, "\(child.output.suffix(500))")
        return child.output
    }

    /// The forms a secret could leak in: plain, base64 and hex.
    static func forms(_ value: Data) -> [String] {
        [String(decoding: value, as: UTF8.self), value.base64EncodedString(), value.map { String(format: "%02x", $0) }.joined()]
    }

    @Test func secretsAreWriteOnlyVersionedSealedPerRecordAndReadOnEitherReplica() async throws {
        try await withVaults { mesh in
            let first = Data("ghp_first-value-0123456789abcdef".utf8), second = Data("ghp_second-value-fedcba9876543210".utf8)
            let firstFile = try file(first), secondFile = try file(second)
            defer { for url in [firstFile, secondFile] { try? FileManager.default.removeItem(at: url) } }

            // Set from a file, then from standard input; the value is never an argument.
            let set = try await warden(
                ["secret", "set", "--org", "acme", "github/token", "--from-file", firstFile.path, "--description", "GitHub", "--tag", "ci"], mesh)
            #expect(set.status == 0 && set.output == "stored acme/github/token version 1", "\(set.output)")
            let warden = try TestEnvironment.binaries.appendingPathComponent("warden").path
            let piped = try ChildProcess(
                name: "warden-stdin", executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", "printf '%s\\n' \"$VALUE\" | \"$WARDEN\" secret set --org acme github/token"],
                environment: [
                    "VALUE": String(decoding: second, as: UTF8.self), "WARDEN": warden, "WARDEN_URL": mesh.gatewayURL,
                    "WARDEN_ADMIN_TOKEN": TestMesh.adminToken,
                ])
            #expect(await piped.waitForExit(timeout: .seconds(30)) == 0, "\(piped.output)")
            #expect(piped.output.contains("stored acme/github/token version 2"), "\(piped.output)")
            let asArgument = try await self.warden(["secret", "set", "--org", "acme", "github/token", "a-value-on-the-command-line"], mesh)
            #expect(asArgument.status != 0, "a value is never taken from the command line: \(asArgument.output)")

            // Metadata, versions and listings, never the value.
            let shown = try await self.warden(["secret", "show", "--org", "acme", "github/token", "--json"], mesh)
            let metadata = try EnvelopeCoding.decoder().decode(SecretMetadata.self, from: Data(shown.output.utf8))
            #expect(metadata.currentVersion == 2 && metadata.description == "GitHub" && metadata.tags == ["ci"])
            #expect(metadata.createdBy == "platform-admin" && metadata.deletedAt == nil)
            let versions = try await self.warden(["secret", "versions", "--org", "acme", "github/token"], mesh)
            #expect(versions.output.contains("1") && versions.output.contains("2") && versions.output.contains("stored"), "\(versions.output)")
            let listed = try await self.warden(["secret", "list", "--org", "acme", "--prefix", "github/"], mesh)
            #expect(listed.output.contains("github/token"), "\(listed.output)")

            // An expiry and a description are kept by later versions until they are changed or cleared.
            let expiring = try await self.warden(
                ["secret", "set", "--org", "acme", "tls/key", "--from-file", firstFile.path, "--expires", "2099-01-01T00:00:00Z"], mesh)
            #expect(expiring.status == 0, "\(expiring.output)")
            _ = try await self.warden(["secret", "set", "--org", "acme", "tls/key", "--from-file", secondFile.path], mesh)
            func tlsKey() async throws -> SecretMetadata {
                let shown = try await self.warden(["secret", "show", "--org", "acme", "tls/key", "--json"], mesh)
                return try EnvelopeCoding.decoder().decode(SecretMetadata.self, from: Data(shown.output.utf8))
            }
            #expect(try await tlsKey().expiresAt != nil, "kept by version 2")
            _ = try await self.warden(
                ["secret", "set", "--org", "acme", "tls/key", "--from-file", secondFile.path, "--no-expiry", "--description", "TLS"], mesh)
            let cleared = try await tlsKey()
            #expect(cleared.expiresAt == nil && cleared.description == "TLS" && cleared.currentVersion == 3)
            _ = try await self.warden(["secret", "set", "--org", "acme", "tls/key", "--from-file", secondFile.path, "--description", ""], mesh)
            #expect(try await tlsKey().description == nil, "an empty description clears it")

            // Services read it over NATS; a write on one replica is read on the other at once.
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-services")
            defer { bus.close() }
            #expect(await read(bus, "github/token") == .success(String(decoding: second, as: UTF8.self)))
            #expect(await read(bus, "github/token", version: 1) == .success(String(decoding: first, as: UTF8.self)))
            for round in 0..<10 {
                _ = try await write(bus, "rotating/value", "rotating-value-\(round)")
                for _ in 0..<4 { #expect(await read(bus, "rotating/value") == .success("rotating-value-\(round)")) }
            }

            // Writers racing on one secret each get a version of their own, and each version holds its value.
            let raced = try await withThrowingTaskGroup(of: Int.self) { group in
                for writer in 0..<12 { group.addTask { try await write(bus, "race/value", "writer-\(writer)").currentVersion } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(raced.sorted() == Array(1...12), "\(raced.sorted())")
            var values: Set<String> = []
            for version in 1...12 { if case .success(let value) = await read(bus, "race/value", version: version) { values.insert(value) } }
            #expect(values == Set((0..<12).map { "writer-\($0)" }), "every version opens with its own writer's value")

            // Bad input gets a clear error.
            let badPath = try await self.warden(["secret", "set", "--org", "acme", "../etc/passwd", "--from-file", firstFile.path], mesh)
            #expect(badPath.status != 0 && badPath.output.contains("'.' or '..' segments"), "\(badPath.output)")
            let large = try file(Data(repeating: 0x41, count: (64 << 10) + 1))
            defer { try? FileManager.default.removeItem(at: large) }
            let tooLarge = try await self.warden(["secret", "set", "--org", "acme", "big", "--from-file", large.path], mesh)
            #expect(tooLarge.status != 0 && tooLarge.output.contains("at most 65536"), "\(tooLarge.output)")
            #expect(await read(bus, "missing/path") == .failure(ServiceError(.notFound, "no secret 'missing/path' in org 'acme'")))
            guard case .failure(let reserved) = await read(bus, "warden/access-key-hashing-key", org: "warden:platform") else {
                Issue.record("the platform's own secrets were served"); return
            }
            #expect(reserved.code == .forbidden)

            // No value, data key or root key in a dump of the whole database, or in any log.
            let database = try await dump(mesh)
            #expect(database.contains("secret_versions"), "the dump covers the vault's schema")
            let rootKey = try #require(Data(base64Encoded: TestMesh.vaultKey))
            for secret in [first, second, Data("rotating-value-9".utf8), rootKey] {
                for form in Self.forms(secret) {
                    #expect(!database.contains(form), "the dump holds a secret in the clear")
                    for (name, process) in mesh.processes { #expect(!process.output.contains(form), "\(name)'s log holds a secret") }
                }
            }

            // One altered byte, or a ciphertext swapped between versions, fails naming the record.
            try await sql(
                mesh,
                "UPDATE secret_versions SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1) WHERE path = 'github/token' AND version = 2"
            )
            guard case .failure(let altered) = await read(bus, "github/token") else { Issue.record("an altered ciphertext opened"); return }
            #expect(altered.message.contains("secret 'github/token' version 2 of org 'acme' cannot be opened"), "\(altered)")
            try await sql(
                mesh,
                """
                UPDATE secret_versions v SET ciphertext = o.ciphertext, wrapped_data_key = o.wrapped_data_key
                FROM secret_versions o WHERE v.path = 'github/token' AND v.version = 2 AND o.path = 'github/token' AND o.version = 1
                """)
            guard case .failure(let swapped) = await read(bus, "github/token") else { Issue.record("a swapped ciphertext opened"); return }
            #expect(swapped.message.contains("version 2 of org 'acme' cannot be opened"), "\(swapped)")
            #expect(await read(bus, "github/token", version: 1) == .success(String(decoding: first, as: UTF8.self)), "the untouched version opens")

            // Delete, undelete, destroy.
            #expect(try await self.warden(["secret", "delete", "--org", "acme", "rotating/value"], mesh).status == 0)
            #expect(await read(bus, "rotating/value") == .failure(ServiceError(.notFound, "secret 'rotating/value' of org 'acme' is deleted")))
            let writeDeleted = try await self.warden(["secret", "set", "--org", "acme", "rotating/value", "--from-file", firstFile.path], mesh)
            #expect(writeDeleted.status != 0 && writeDeleted.output.contains("undelete it first"), "\(writeDeleted.output)")
            #expect(try await self.warden(["secret", "undelete", "--org", "acme", "rotating/value"], mesh).status == 0)
            #expect(await read(bus, "rotating/value") == .success("rotating-value-9"))
            let refused = try await self.warden(["secret", "destroy", "--org", "acme", "github/token", "--version", "1"], mesh)
            #expect(refused.status != 0 && refused.output.contains("--yes"), "\(refused.output)")
            #expect(try await self.warden(["secret", "destroy", "--org", "acme", "github/token", "--version", "1", "--yes"], mesh).status == 0)
            #expect(
                await read(bus, "github/token", version: 1) == .failure(ServiceError(.notFound, "version 1 of secret 'github/token' was destroyed")))
            try await withDatabaseClient(mesh.database, as: .vault) { client in
                let rows = try await client.query(
                    "SELECT count(*) FROM secret_versions WHERE path = 'github/token' AND version = 1 AND ciphertext IS NULL AND wrapped_data_key IS NULL",
                    logger: TestEnvironment.logger)
                for try await count in rows.decode(Int.self) { #expect(count == 1, "the ciphertext is gone") }
                return 0
            }
        }
    }

    @Test func rootAndOrgKeysRotateWhileSecretsAreReadAndWrittenAndAWrongRootKeyStopsTheVault() async throws {
        try await withMesh { mesh in
            try startVaults(mesh, [:])
            try mesh.start(.gateway)
            try await mesh.waitFor("two vaults", timeout: .seconds(60)) { $0.gateway.ready && $0.service(.vault)?.readyInstances == 2 }
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-load")
            defer { bus.close() }
            for index in 0..<20 { _ = try await write(bus, "app/\(index)", "initial-\(index)") }

            // The root key changes: the vaults restart with the new one and the old one as previous.
            for name in ["vault-1", "vault-2"] { await mesh.processes[name]?.stop() }
            try startVaults(
                mesh, ["WARDEN_VAULT_KEY": Self.secondRootKey, "WARDEN_VAULT_PREVIOUS_KEY": Self.firstRootKey], suffix: "-rotating")
            try await mesh.waitFor("two rotating vaults", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 2 }
            let before = try await warden(["vault", "status", "--json"], mesh)
            let status = try EnvelopeCoding.decoder().decode(VaultStatus.self, from: Data(before.output.utf8))
            #expect(status.orgKeysUnderOtherRoots == 2 && status.previousRootKeyID != nil, "acme and the platform: \(before.output)")

            // Load: secrets 0-9 are rewritten, 10-19 only read, continuously, while every rotation runs.
            let load = LoadReport()
            try await withThrowingTaskGroup(of: Void.self) { group in
                let stop = StopFlag()
                group.addTask {
                    var round = 0
                    while !stop.isSet {
                        round += 1
                        let index = round % 10
                        do {
                            _ = try await write(bus, "app/\(index)", "round-value-\(round)")
                            load.expect(index, "round-value-\(round)")
                        } catch {
                            load.fail("write app/\(index): \(error)")
                        }
                        let reader = 10 + round % 10
                        switch await read(bus, "app/\(reader)") {
                        case .success(let value) where value == "initial-\(reader)": load.count()
                        case .success(let value): load.fail("app/\(reader) read \(value)")
                        case .failure(let error): load.fail("read app/\(reader): \(error)")
                        }
                    }
                }
                group.addTask {
                    defer { stop.set() }
                    let dry = try await warden(["vault", "rotate-org-key", "--org", "acme", "--dry-run"], mesh)
                    #expect(dry.status == 0 && dry.output.contains("would rewrap"), "\(dry.output)")
                    let root = try await warden(["vault", "rotate-root-key"], mesh)
                    #expect(root.status == 0 && root.output.contains("rewrapped 2 org key(s)"), "\(root.output)")
                    for _ in 0..<2 {
                        let org = try await warden(["vault", "rotate-org-key", "--org", "acme"], mesh)
                        #expect(org.status == 0 && org.output.contains("data key(s) of org acme"), "\(org.output)")
                    }
                    let reencrypt = try await warden(["vault", "reencrypt", "--org", "acme", "app/15"], mesh)
                    #expect(reencrypt.status == 0 && reencrypt.output.contains("re-encrypted 1 version(s)"), "\(reencrypt.output)")
                    try await Task.sleep(for: .milliseconds(300))
                }
                try await group.waitForAll()
            }
            #expect(load.failures.isEmpty, "\(load.failures.prefix(5))")
            #expect(load.reads > 20, "reads ran during the rotations: \(load.reads)")
            for (index, value) in load.latest { #expect(await read(bus, "app/\(index)") == .success(value)) }
            for index in 10..<20 { #expect(await read(bus, "app/\(index)") == .success("initial-\(index)")) }
            let after = try EnvelopeCoding.decoder().decode(
                VaultStatus.self, from: Data(try await warden(["vault", "status", "--json"], mesh).output.utf8))
            #expect(after.orgKeysUnderOtherRoots == 0)
            #expect(after.orgKeys.first { $0.org == "acme" }?.currentVersion == 3)
            #expect(after.orgKeys.first { $0.org == "acme" }?.versions == 1, "old org key versions no record uses are deleted")

            // The new key alone opens everything; the old one alone stops the vault, saying why.
            for name in ["vault-1-rotating", "vault-2-rotating"] { await mesh.processes[name]?.stop() }
            let wrong = try mesh.start(.vault, name: "vault-old-key")
            #expect(await wrong.waitForExit(timeout: .seconds(60)) != 0, "a wrong root key stops the vault")
            #expect(
                wrong.output.contains("wrapped by root key local:") && wrong.output.contains("configure the root key"), "\(wrong.output.suffix(800))")
            try mesh.start(.vault, name: "vault-new-key", extra: ["WARDEN_VAULT_KEY": Self.secondRootKey])
            try await mesh.waitFor("the vault with the new key", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
            #expect(await read(bus, "app/12") == .success("initial-12"))
        }
    }

    @Test func aPassphraseDerivesTheSameRootKeyAtEveryStartAndAnotherPassphraseIsRefused() async throws {
        try await withMesh { mesh in
            let passphrase = ["WARDEN_VAULT_KEY": "", "WARDEN_VAULT_PASSPHRASE": "correct horse battery staple 7f3a"]
            try mesh.start(.vault, name: "vault-passphrase", extra: passphrase)
            try mesh.start(.gateway)
            try await mesh.waitFor("the vault", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-passphrase")
            defer { bus.close() }
            _ = try await write(bus, "db/password", "under-a-passphrase")
            await mesh.processes["vault-passphrase"]?.stop()
            try mesh.start(.vault, name: "vault-passphrase-again", extra: passphrase)
            try await mesh.waitFor("the restarted vault", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
            #expect(await read(bus, "db/password") == .success("under-a-passphrase"))
            await mesh.processes["vault-passphrase-again"]?.stop()
            let other = try mesh.start(
                .vault, name: "vault-other-passphrase", extra: ["WARDEN_VAULT_KEY": "", "WARDEN_VAULT_PASSPHRASE": "another passphrase entirely"])
            #expect(await other.waitForExit(timeout: .seconds(60)) != 0)
            #expect(other.output.contains("configure the root key they were stored with"), "\(other.output.suffix(600))")
            for (name, process) in mesh.processes { #expect(!process.output.contains("correct horse"), "\(name) logged the passphrase") }
        }
    }

    @Test func signingKeysSealedByAnEarlierWardenMoveUnderTheHierarchyAndKeepSigning() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault, name: "vault-1")
            try mesh.start(.gateway)
            try await mesh.waitFor("the vault", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-upgrade")
            defer { bus.close() }
            let client = ServiceClient(bus: bus, caller: "test/upgrade")
            let keys = try await client.call(VaultEndpoints.publicKeys, EmptyBody())
            let kid = try #require(keys.keys.first?.kid)
            // Make the row what an earlier Warden stored: the private key sealed with WARDEN_VAULT_KEY itself.
            await mesh.processes["vault-1"]?.stop()
            let legacy = try VaultKey(base64: TestMesh.vaultKey)
            let privateKey = Curve25519.Signing.PrivateKey()
            let sealed = try legacy.seal(Array(privateKey.rawRepresentation), boundTo: kid)
            try await sql(
                mesh,
                """
                UPDATE signing_keys SET sealed_private_key = \(ByteBuffer(bytes: sealed)), public_key = \(ByteBuffer(bytes: privateKey.publicKey.rawRepresentation)),
                  wrapped_data_key = NULL, org_key_version = NULL WHERE kid = \(kid)
                """)
            try mesh.start(.vault, name: "vault-upgraded")
            try await mesh.waitFor("the upgraded vault", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
            #expect(mesh.processes["vault-upgraded"]?.output.contains("token signing keys sealed under the key hierarchy") == true)
            let signed = try await client.call(
                VaultEndpoints.signToken,
                TokenSigningRequest(
                    issuer: "https://w.test", audience: "https://w.test/mcp", agent: "a", org: "acme", user: "u", scopes: ["mcp"], lifetimeSeconds: 60
                ))
            #expect(signed.token.split(separator: ".").count == 3)
            try await withDatabaseClient(mesh.database, as: .vault) { client in
                let rows = try await client.query("SELECT count(*) FROM signing_keys WHERE org_key_version IS NULL", logger: TestEnvironment.logger)
                for try await count in rows.decode(Int.self) { #expect(count == 0, "nothing is left sealed the old way") }
                return 0
            }
        }
    }

    @Test func whatOneReplicaWritesTheOtherReadsAtOnce() async throws {
        try await withVaults { mesh in
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-replicas")
            defer { bus.close() }
            // vault-2 alone writes; then vault-1 alone reads, and the other way round.
            await mesh.processes["vault-1"]?.stop()
            for index in 0..<5 { _ = try await write(bus, "replica/\(index)", "from-vault-2-\(index)") }
            let first = try mesh.start(.vault, name: "vault-1-again")
            #expect(await eventually(timeout: .seconds(60)) { first.output.contains("vault keys open") }, "\(first.output.suffix(500))")
            await mesh.processes["vault-2"]?.stop()
            for index in 0..<5 { #expect(await read(bus, "replica/\(index)") == .success("from-vault-2-\(index)")) }
            _ = try await write(bus, "replica/0", "from-vault-1")
            let second = try mesh.start(.vault, name: "vault-2-again")
            #expect(await eventually(timeout: .seconds(60)) { second.output.contains("vault keys open") }, "\(second.output.suffix(500))")
            await mesh.processes["vault-1-again"]?.stop()
            #expect(await read(bus, "replica/0") == .success("from-vault-1"), "the other replica reads the new version at once")
            #expect(await read(bus, "replica/0", version: 1) == .success("from-vault-2-0"))
        }
    }

    @Test func orgAdminsManageOnlyTheirOwnOrgsSecretsAndKeys() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            try mesh.start(.gateway)
            try await mesh.waitFor("the vault, policy and the gateway", timeout: .seconds(60)) { status in
                status.gateway.ready && status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
            }
            let (owner, _) = try await AgentAuthenticationTests.principals(mesh, agents: 0)
            let orgAdmin = try await AgentAuthenticationTests.warden(["user", "admin-token", "--org", "acme", owner], mesh)
            let value = try file(Data("org-admin-value".utf8))
            defer { try? FileManager.default.removeItem(at: value) }
            func asOrgAdmin(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
                try await runWarden(arguments, url: mesh.gatewayURL, adminToken: orgAdmin)
            }
            let own = try await asOrgAdmin(["secret", "set", "--org", "acme", "ci/token", "--from-file", value.path])
            #expect(own.status == 0, "\(own.output)")
            let shown = try await asOrgAdmin(["secret", "show", "--org", "acme", "ci/token", "--json"])
            #expect(shown.output.contains("\"createdBy\":\"user:\(owner)\""), "the record names the admin: \(shown.output)")
            #expect(try await asOrgAdmin(["vault", "rotate-org-key", "--org", "acme"]).status == 0, "an org admin rotates its own org's key")
            for other in [
                ["secret", "set", "--org", "globex", "ci/token", "--from-file", value.path], ["secret", "list", "--org", "globex"],
                ["vault", "rotate-org-key", "--org", "globex"], ["vault", "rotate-org-key", "--platform"],
            ] {
                let refused = try await asOrgAdmin(other)
                #expect(refused.status != 0 && refused.output.contains("(not_found)"), "\(other): \(refused.output)")
            }
            for platformOnly in [["vault", "status"], ["vault", "rotate-root-key"], ["vault", "shred-org", "--org", "acme", "--confirm", "acme"]] {
                let refused = try await asOrgAdmin(platformOnly)
                #expect(refused.status != 0 && refused.output.contains("(forbidden)"), "\(platformOnly): \(refused.output)")
            }
            // The platform rotates its own key: the signing keys keep signing, API keys keep working.
            let platform = try await warden(["vault", "rotate-org-key", "--platform"], mesh)
            #expect(platform.status == 0 && platform.output.contains("data key(s) of the platform"), "\(platform.output)")
            let agent = try await AgentAuthenticationTests.warden(["agent", "add", "--org", "acme", "--name", "after", "--owner", owner], mesh)
            let token = try await AgentAuthenticationTests.warden(["token", "issue", "--org", "acme", "--agent", agent], mesh)
            #expect(token.split(separator: ".").count == 3, "a token is signed after the platform key rotated: \(token)")
        }
    }

    @Test func shreddingAnOrgDestroysItsKeysAndSecretsAndNothingElseEvenInADumpTakenBefore() async throws {
        try await withVaults { mesh in
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-shred")
            defer { bus.close() }
            _ = try await write(bus, "db/password", "acme-password", org: "acme")
            _ = try await write(bus, "db/password", "globex-password", org: "globex")
            let unconfirmed = try await warden(["vault", "shred-org", "--org", "acme"], mesh)
            #expect(unconfirmed.status != 0 && unconfirmed.output.contains("--confirm acme"), "\(unconfirmed.output)")
            #expect(await read(bus, "db/password", org: "acme") == .success("acme-password"), "nothing happened without confirmation")

            // The share, as NATS stores it on disk.
            let share = try await shareBytes(mesh, org: "acme")
            #expect(try await storeHolds(mesh, share, expected: true) == true, "the control: NATS's files hold the share")

            // A backup of the vault's records, taken before the shredding.
            let backup = try await dump(
                mesh,
                [
                    "--data-only", "--inserts", "--on-conflict-do-nothing", "-t", "vault.org_keys", "-t", "vault.secrets", "-t",
                    "vault.secret_versions",
                ])
            #expect(backup.contains("INSERT INTO vault.org_keys"), "\(backup.prefix(500))")

            let shredded = try await warden(["vault", "shred-org", "--org", "acme", "--confirm", "acme"], mesh)
            #expect(
                shredded.status == 0 && shredded.output.contains("destroyed 1 key(s) and 1 secret version(s) of org acme in "), "\(shredded.output)")
            #expect(shredded.output.contains("their share outside the database is gone, so no copy of the database opens what they sealed"))
            #expect(try await storeHolds(mesh, share, expected: false) == false, "erased, not just marked deleted: its bytes are gone from disk")
            #expect(await read(bus, "db/password", org: "acme") == .failure(ServiceError(.notFound, "no secret 'db/password' in org 'acme'")))
            #expect(await read(bus, "db/password", org: "globex") == .success("globex-password"), "another org is untouched")
            #expect(try await count(mesh, "SELECT count(*) FROM org_keys WHERE org = 'acme'") == 0, "the org's keys are gone")

            // The backup restored: acme's wrapped key and sealed value are back in the database, the
            // root key is the same, and still nothing of acme opens; a vault starting on it starts.
            try await restore(mesh, backup)
            #expect(try await count(mesh, "SELECT count(*) FROM secret_versions WHERE org = 'acme' AND ciphertext IS NOT NULL") == 1, "restored")
            for name in ["vault-1", "vault-2"] { await mesh.processes[name]?.stop() }
            try startVaults(mesh, [:], suffix: "-restored")
            try await mesh.waitFor("two vaults on the restored records", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 2 }
            let restoredRead = await read(bus, "db/password", org: "acme")
            if case .failure(let error) = restoredRead {
                #expect(error.code == .notFound && error.message.contains("org 'acme''s keys were destroyed (shredded)"), "\(error)")
            } else {
                Issue.record("a shredded org's secret opened from a dump taken before: \(restoredRead)")
            }
            #expect(await read(bus, "db/password", org: "globex") == .success("globex-password"), "the restore itself worked")
        }
    }

    @Test func onlyTheVaultMayTouchTheOrgKeyShares() async throws {
        try await withVaults { mesh in
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-shares")
            defer { bus.close() }
            _ = try await write(bus, "db/password", "acme-password", org: "acme")
            let stream = "KV_\(OrgKeyShares.bucketName)", subject = "$KV.\(OrgKeyShares.bucketName).\(OrgKeyShares.key("acme"))"
            let lastMessage = Data(#"{"last_by_subj": "\#(subject)"}"#.utf8)
            let vault = try await mesh.nats.connect(as: .vault, name: "test-shares-vault")
            defer { vault.close() }
            let asVault = try await vault.request("$JS.API.STREAM.MSG.GET.\(stream)", payload: lastMessage, timeout: .seconds(5))
            #expect(String(decoding: asVault.payload, as: UTF8.self).contains(#""data""#), "the vault's own user reads its share")
            let denied: [(String, Data)] = [
                ("$JS.API.STREAM.MSG.GET.\(stream)", lastMessage),
                ("$JS.API.STREAM.INFO.\(stream)", Data()), ("$JS.API.STREAM.PURGE.\(stream)", Data()),
                ("$JS.API.STREAM.MSG.DELETE.\(stream)", Data(#"{"seq": 1}"#.utf8)), ("$JS.API.CONSUMER.CREATE.\(stream)", Data()),
                ("$JS.API.CONSUMER.CREATE.\(stream).copy.\(subject)", Data()), ("$JS.API.CONSUMER.DURABLE.CREATE.\(stream).copy", Data()),
                (subject, Data("forged".utf8)),
            ]
            for (subject, payload) in denied {
                // Allowed, each would be answered (by JetStream) at once.
                await #expect(throws: (any Error).self, "the gateway may not use \(subject)") {
                    _ = try await bus.request(subject, payload: payload, timeout: .seconds(2))
                }
            }
            #expect(await read(bus, "db/password", org: "acme") == .success("acme-password"), "the share is intact")
        }
    }

    @Test func aVaultWhoseNATSLostItsStorageRefusesToStartSayingSo() async throws {
        try await withVaults { mesh in
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-lost")
            _ = try await write(bus, "db/password", "acme-password", org: "acme")
            bus.close()
            for name in ["vault-1", "vault-2"] { await mesh.processes[name]?.stop() }
            await mesh.nats.stop(signal: SIGTERM)
            try FileManager.default.removeItem(at: mesh.nats.storeDirectory)
            try await mesh.nats.start()
            let vault = try mesh.start(.vault, name: "vault-after-loss")
            #expect(await vault.waitForExit(timeout: .seconds(60)) != 0, "the vault stops")
            #expect(
                vault.output.contains("org key version(s) are bound to shares in the NATS bucket WARDEN_VAULT_ORG_SHARES, which does not exist"),
                "\(vault.output.suffix(1500))")
            #expect(try await count(mesh, "SELECT count(*) FROM org_keys WHERE org = 'acme' AND bound_to_share") == 1, "nothing was changed")
        }
    }

    @Test func anOrgWhoseShareIsGoneGetsNoFreshKeysBesideTheOnesNothingOpens() async throws {
        try await withVaults { mesh in
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-orphaned")
            defer { bus.close() }
            _ = try await write(bus, "db/password", "acme-password", org: "acme")
            // A shredding interrupted after the erasure: the share is gone, the rows are not.
            let vault = try await mesh.nats.connect(as: .vault, name: "test-orphaned-vault")
            defer { vault.close() }
            let bucket = try await vault.keyValueBucket(KeyValueBucketSpec(name: OrgKeyShares.bucketName, erasable: true), create: false)
            #expect(try await bucket.erase(OrgKeyShares.key("acme")))
            let rotated = try await warden(["vault", "rotate-org-key", "--org", "acme"], mesh)
            #expect(rotated.status != 0 && rotated.output.contains("bound to a share that is gone"), "\(rotated.output)")
            #expect(try await count(mesh, "SELECT count(*) FROM org_keys WHERE org = 'acme'") == 1, "no key beside the orphaned one")
            let finished = try await warden(["vault", "shred-org", "--org", "acme", "--confirm", "acme"], mesh)
            #expect(finished.status == 0 && finished.output.contains("their share outside the database is gone"), "\(finished.output)")
            _ = try await write(bus, "db/password", "new-acme-password", org: "acme")
            #expect(await read(bus, "db/password", org: "acme") == .success("new-acme-password"), "the org starts again after the shredding")
        }
    }

    @Test func orgKeysMadeBeforeSharesAreCountedAndAnOrgKeyRotationBindsThem() async throws {
        try await withVaults { mesh in
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-unbound")
            defer { bus.close() }
            // Org keys as an earlier Warden made them: wrapped by the root key, with no share.
            let root = try LocalKeyProvider(base64: Self.firstRootKey, variable: "WARDEN_VAULT_KEY")
            for org in ["initech", "hooli"] {
                let raw = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
                let wrapped = try await root.wrap(raw, context: OrgKey.wrappingContext(org: org, version: 1, bound: false))
                try await sql(
                    mesh,
                    "INSERT INTO org_keys (org, version, wrapped_key, root_key_id) VALUES (\(org), 1, \(ByteBuffer(bytes: wrapped)), \(root.keyID))")
                _ = try await write(bus, "db/password", "\(org)-password", org: org)
            }
            #expect(try await count(mesh, "SELECT count(*) FROM secret_versions WHERE org_key_version = 1 AND org IN ('initech', 'hooli')") == 2)

            let before = try EnvelopeCoding.decoder().decode(
                VaultStatus.self, from: Data(try await warden(["vault", "status", "--json"], mesh).output.utf8))
            #expect(before.orgKeysWithoutShare == 2, "\(before)")
            let text = try await warden(["vault", "status"], mesh)
            #expect(text.output.contains("2 org key(s) made by an earlier Warden (rotate-org-key binds them"), "\(text.output)")

            // Shredding an org whose keys have no share says what it cannot promise.
            let unboundShred = try await warden(["vault", "shred-org", "--org", "hooli", "--confirm", "hooli"], mesh)
            #expect(unboundShred.output.contains("1 of them had no share outside the database (made by an earlier Warden)"), "\(unboundShred.output)")

            let rotated = try await warden(["vault", "rotate-org-key", "--org", "initech"], mesh)
            #expect(rotated.status == 0, "\(rotated.output)")
            let after = try EnvelopeCoding.decoder().decode(
                VaultStatus.self, from: Data(try await warden(["vault", "status", "--json"], mesh).output.utf8))
            #expect(after.orgKeysWithoutShare == 0, "\(after)")
            #expect(await read(bus, "db/password", org: "initech") == .success("initech-password"), "rewrapped under the bound key")
            let shredded = try await warden(["vault", "shred-org", "--org", "initech", "--confirm", "initech"], mesh)
            #expect(shredded.output.contains("their share outside the database is gone"), "\(shredded.output)")

            // The org again: its keys' numbers go on from the shredded ones (2), never reused.
            _ = try await write(bus, "db/password", "new-initech-password", org: "initech")
            #expect(try await count(mesh, "SELECT max(version) FROM org_keys WHERE org = 'initech'") == 3)
            #expect(await read(bus, "db/password", org: "initech") == .success("new-initech-password"))
        }
    }

    /// An org's share, read as the vault reads it.
    func shareBytes(_ mesh: TestMesh, org: String) async throws -> Data {
        let vault = try await mesh.nats.connect(as: .vault, name: "test-share-reader")
        defer { vault.close() }
        let subject = "$KV.\(OrgKeyShares.bucketName).\(OrgKeyShares.key(org))"
        let reply = try await vault.request(
            "$JS.API.STREAM.MSG.GET.KV_\(OrgKeyShares.bucketName)", payload: Data(#"{"last_by_subj": "\#(subject)"}"#.utf8), timeout: .seconds(5))
        struct Answer: Decodable { struct Message: Decodable { var data: String }; var message: Message }
        let answer = try JSONDecoder().decode(Answer.self, from: reply.payload)
        return try #require(Data(base64Encoded: answer.message.data))
    }

    /// Whether any file of the NATS server's store holds `bytes`: as soon as that is `expected`,
    /// else what it is after `within` (the server writes and erases asynchronously).
    func storeHolds(_ mesh: TestMesh, _ bytes: Data, expected: Bool, within: Duration = .seconds(5)) async throws -> Bool {
        let deadline = ContinuousClock.now + within
        while true {
            var holds = false
            if let files = FileManager.default.enumerator(at: mesh.nats.storeDirectory, includingPropertiesForKeys: nil) {
                for case let file as URL in files where (try? Data(contentsOf: file))?.range(of: bytes) != nil { holds = true }
            }
            if holds == expected || ContinuousClock.now >= deadline { return holds }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func count(_ mesh: TestMesh, _ query: PostgresQuery) async throws -> Int {
        try await withDatabaseClient(mesh.database, as: .vault) { client in
            for try await count in try await client.query(query, logger: TestEnvironment.logger).decode(Int.self) { return count }
            return -1
        }
    }

    /// Runs a SQL script (a dump) as the database's administrator.
    func restore(_ mesh: TestMesh, _ script: String) async throws {
        let file = try self.file(Data(script.utf8))
        defer { try? FileManager.default.removeItem(at: file) }
        let child = try ChildProcess(
            name: "psql", executable: URL(fileURLWithPath: "/usr/lib/postgresql/15/bin/psql"),
            arguments: [
                "-h", "127.0.0.1", "-p", "\(try TestEnvironment.postgresPort)", "-U", "warden_admin", "-d", mesh.database.name, "-v",
                "ON_ERROR_STOP=1",
                "-q", "-f", file.path,
            ],
            environment: ["PGPASSWORD": try TestEnvironment.adminPassword])
        #expect(await child.waitForExit(timeout: .seconds(60)) == 0, "\(child.output.suffix(500))")
    }
}

/// What the load saw while keys rotated.
final class LoadReport: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (failures: [String], reads: Int, latest: [Int: String]) = ([], 0, [:])
    func fail(_ message: String) { lock.withLock { stored.failures.append(message) } }
    func count() { lock.withLock { stored.reads += 1 } }
    func expect(_ index: Int, _ value: String) { lock.withLock { stored.latest[index] = value } }
    var failures: [String] { lock.withLock { stored.failures } }
    var reads: Int { lock.withLock { stored.reads } }
    var latest: [Int: String] { lock.withLock { stored.latest } }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
