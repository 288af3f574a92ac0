import Foundation
import Testing
import WardenContracts
import WardenNATS
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// The vault's root key in AWS KMS, against a local KMS (moto's server, from PyPI, which `make test`
/// installs): store, restart, read back; an unknown KMS key stops the vault at start-up.
@Suite(.serialized) struct AWSKMSProviderTests {
    /// A moto server on a free port and a KMS key made in it.
    func withKMS(_ body: (_ endpoint: String, _ keyID: String) async throws -> Void) async throws {
        let python = try StdioServerTests.python
        let port = freePort()
        let server = try ChildProcess(
            name: "moto", executable: URL(fileURLWithPath: python), arguments: ["-m", "moto.server", "-H", "127.0.0.1", "-p", "\(port)"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = "http://127.0.0.1:\(port)"
        let script = """
            import boto3, sys
            kms = boto3.client("kms", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
            print(kms.create_key(Description="warden test root")["KeyMetadata"]["KeyId"])
            """
        var keyID: String?
        let made = await eventually(timeout: .seconds(60)) {
            guard
                let child = try? ChildProcess(name: "kms-create-key", executable: URL(fileURLWithPath: python), arguments: ["-c", script, endpoint]),
                await child.waitForExit(timeout: .seconds(30)) == 0
            else { return false }
            keyID = child.output.split(separator: "\n").last.map(String.init)
            return keyID != nil
        }
        #expect(made, "the local KMS did not answer: \(server.output.suffix(500))")
        try await body(endpoint, try #require(keyID))
    }

    func kms(_ endpoint: String, _ keyID: String) -> [String: String] {
        [
            "WARDEN_VAULT_KEY_PROVIDER": "aws-kms", "WARDEN_VAULT_AWS_KMS_KEY_ID": keyID, "WARDEN_VAULT_AWS_REGION": "us-east-1",
            "WARDEN_VAULT_AWS_KMS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test-secret-key",
        ]
    }

    @Test func secretsSealedUnderAKMSKeySurviveARestartAndAnUnknownKeyStopsTheVault() async throws {
        try await withKMS { endpoint, keyID in
            try await withMesh { mesh in
                let vaults = VaultSecretsTests()
                try mesh.start(.vault, name: "vault-kms", extra: kms(endpoint, keyID))
                try mesh.start(.gateway)
                try await mesh.waitFor("the vault on KMS", timeout: .seconds(60)) { $0.gateway.ready && $0.service(.vault)?.readyInstances == 1 }
                let bus = try await mesh.nats.connect(as: .gateway, name: "test-kms")
                defer { bus.close() }
                _ = try await vaults.write(bus, "db/password", "sealed-under-kms")
                let (code, output) = try await runWarden(["vault", "status", "--json"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect(code == 0, "\(output)")
                let status = try EnvelopeCoding.decoder().decode(VaultStatus.self, from: Data(output.utf8))
                #expect(status.provider == "aws-kms" && status.rootKeyID == "aws-kms:\(keyID)")

                await mesh.processes["vault-kms"]?.stop()
                try mesh.start(.vault, name: "vault-kms-again", extra: kms(endpoint, keyID))
                try await mesh.waitFor("the restarted vault", timeout: .seconds(60)) { $0.service(.vault)?.readyInstances == 1 }
                #expect(await vaults.read(bus, "db/password") == .success("sealed-under-kms"))
                #expect(!(mesh.processes["vault-kms-again"]?.output.contains("test-secret-key") ?? true), "the AWS secret is not logged")

                // Another (unknown) KMS key cannot unwrap what is stored: the vault stops, saying why.
                await mesh.processes["vault-kms-again"]?.stop()
                let wrong = try mesh.start(
                    .vault, name: "vault-kms-wrong", extra: kms(endpoint, "00000000-0000-0000-0000-000000000000"))
                #expect(await wrong.waitForExit(timeout: .seconds(60)) != 0)
                #expect(
                    wrong.output.contains("wrapped by root key aws-kms:\(keyID)") && wrong.output.contains("aws-kms:00000000"),
                    "\(wrong.output.suffix(800))")
            }
        }
    }
}
