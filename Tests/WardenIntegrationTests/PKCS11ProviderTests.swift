import Foundation
import Testing
import WardenContracts
import WardenNATS
import WardenServiceKit

/// The vault's root key in a real PKCS#11 module (SoftHSM2, which `make test` installs): moving
/// from the `local` provider to it is a root rotation; secrets survive restarts; a wrong PIN stops
/// the vault at start-up.
@Suite(.serialized) struct PKCS11ProviderTests {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"

    /// A fresh SoftHSM2 token store with one initialised token, `warden-test`.
    func withToken(_ body: (_ configuration: String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-softhsm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("tokens"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = directory.appendingPathComponent("softhsm2.conf")
        try Data("directories.tokendir = \(directory.path)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n".utf8).write(to: configuration)
        let initialise = try ChildProcess(
            name: "softhsm2-util", executable: URL(fileURLWithPath: "/usr/bin/softhsm2-util"),
            arguments: ["--init-token", "--free", "--label", "warden-test", "--pin", "pin-7f3a9c1e", "--so-pin", "12345678"],
            environment: ["SOFTHSM2_CONF": configuration.path])
        #expect(await initialise.waitForExit(timeout: .seconds(30)) == 0, "\(initialise.output)")
        try await body(configuration.path)
    }

    func hsm(_ configuration: String, pin: String = "pin-7f3a9c1e") -> [String: String] {
        [
            "SOFTHSM2_CONF": configuration, "WARDEN_VAULT_KEY_PROVIDER": "pkcs11", "WARDEN_VAULT_PKCS11_MODULE": Self.module,
            "WARDEN_VAULT_PKCS11_TOKEN": "warden-test", "WARDEN_VAULT_PKCS11_PIN": pin,
        ]
    }

    func status(_ mesh: TestMesh) async throws -> VaultStatus {
        let (code, output) = try await runWarden(["vault", "status", "--json"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
        #expect(code == 0, "\(output)")
        return try EnvelopeCoding.decoder().decode(VaultStatus.self, from: Data(output.utf8))
    }

    @Test func movingFromTheLocalKeyToAnHSMIsARotationAndSecretsSurviveRestarts() async throws {
        try await withToken { configuration in
            try await withMesh { mesh in
                let vaults = VaultSecretsTests()
                try mesh.start(.vault, name: "vault-local")
                try mesh.start(.gateway)
                try await mesh.waitFor("the vault", timeout: .seconds(60)) { $0.gateway.ready && $0.service(.vault)?.readyInstances == 1 }
                let bus = try await mesh.nats.connect(as: .gateway, name: "test-hsm")
                defer { bus.close() }
                _ = try await vaults.write(bus, "github/token", "stored-under-the-local-key")

                // The HSM becomes the root; the local key is the previous one until the rotation.
                await mesh.processes["vault-local"]?.stop()
                // The key is made only when asked to: a missing label is an error.
                let missing = try mesh.start(.vault, name: "vault-no-key", extra: hsm(configuration))
                #expect(await missing.waitForExit(timeout: .seconds(60)) != 0)
                #expect(missing.output.contains("has no secret key labelled 'warden-root-key'"), "\(missing.output.suffix(600))")
                var rotating = hsm(configuration)
                rotating["WARDEN_VAULT_PREVIOUS_KEY"] = TestMesh.vaultKey
                rotating["WARDEN_VAULT_PKCS11_CREATE_KEY"] = "true"
                try mesh.start(.vault, name: "vault-rotating", extra: rotating)
                try await mesh.waitFor("the vault with the HSM", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
                var current = try await status(mesh)
                #expect(current.provider == "pkcs11" && current.rootKeyID == "pkcs11:warden-test/warden-root-key")
                #expect(current.orgKeysUnderOtherRoots == 2 && current.previousRootKeyID?.hasPrefix("local:") == true)
                let rotated = try await runWarden(["vault", "rotate-root-key"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect(rotated.status == 0 && rotated.output.contains("rewrapped 2 org key(s)"), "\(rotated.output)")
                current = try await status(mesh)
                #expect(current.orgKeysUnderOtherRoots == 0)
                _ = try await vaults.write(bus, "github/second", "stored-under-the-hsm")

                // The HSM alone, after a restart: everything opens.
                await mesh.processes["vault-rotating"]?.stop()
                try mesh.start(.vault, name: "vault-hsm", extra: hsm(configuration))
                try await mesh.waitFor("the vault with the HSM only", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
                #expect(await vaults.read(bus, "github/token") == .success("stored-under-the-local-key"))
                #expect(await vaults.read(bus, "github/second") == .success("stored-under-the-hsm"))
                for (name, process) in mesh.processes { #expect(!process.output.contains("pin-7f3a9c1e"), "\(name) logged the PIN") }

                // A wrong PIN stops the vault at start-up, saying why.
                await mesh.processes["vault-hsm"]?.stop()
                let refused = try mesh.start(.vault, name: "vault-wrong-pin", extra: hsm(configuration, pin: "pin-wrong-0000"))
                #expect(await refused.waitForExit(timeout: .seconds(60)) != 0)
                #expect(refused.output.contains("key provider 'pkcs11': the token refused the PIN"), "\(refused.output.suffix(600))")
                #expect(!refused.output.contains("pin-wrong-0000"), "a refused PIN is not logged either")
                let noToken = try mesh.start(
                    .vault, name: "vault-no-token", extra: hsm(configuration).merging(["WARDEN_VAULT_PKCS11_TOKEN": "absent"]) { $1 })
                #expect(await noToken.waitForExit(timeout: .seconds(60)) != 0)
                #expect(
                    noToken.output.contains("no token labelled 'absent'") && noToken.output.contains("warden-test"), "\(noToken.output.suffix(600))")
            }
        }
    }
}
