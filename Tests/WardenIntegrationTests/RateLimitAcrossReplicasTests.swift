import Foundation
import NIOHTTP1
import Testing
import WardenContracts

/// A policy's rate limit holds across gateway replicas: N calls a minute let N through in all,
/// whichever replica takes them, and the next is refused with when to retry.
@Suite(.serialized) struct RateLimitAcrossReplicasTests {
    static let policy = """
        rules:
          - {id: all, effect: allow, tools: ["*"]}
          - {id: small-results, effect: allow, tools: [db_query], obligations: {maxResultBytes: 40}}
        limits:
          - {id: four-a-minute, rate: 4/minute, tools: ["corp__web_search"]}

        """

    @Test func aLimitOfNAMinuteLetsNThroughAcrossTwoReplicas() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            let secondPort = freePort()
            try mesh.start(.gateway, name: "gateway-2", extra: ["WARDEN_HTTP_PORT": "\(secondPort)"])
            let secondURL = "http://127.0.0.1:\(secondPort)"
            try await mesh.withAgent {
                func warden(_ arguments: [String]) async throws -> String {
                    let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                    #expect(status == 0, "warden \(arguments.joined(separator: " ")): \(output)")
                    return output
                }
                let token = try #require(TestMesh.agentToken)
                let policy = PolicyEnforcementTests()
                let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/policy_tools_server.py").path
                _ = try await warden(["server", "add", "corp", "--org", "acme", "--command", try StdioServerTests.python, "--arg", script])
                _ = try await warden(["policy", "apply", "--org", "acme", "-f", try policy.file(Self.policy)])
                for url in [mesh.gatewayURL, secondURL] {
                    let ready = await eventually(timeout: .seconds(60)) {
                        let body = (try? await CredentialInjectionTests().admin(mesh, .GET, "/admin/v1/servers", url: url))?.body ?? ""
                        return body.contains("\"ready\"") && body.contains("\"tools\":7")
                    }
                    #expect(ready, "the server is ready on \(url)")
                }
                // Two calls through each replica: all four pass; the fifth, on either, is refused.
                let search = ("corp__web_search", #"{"query": "q"}"#)
                let (first, firstOutput) = try await policy.run(mesh.gatewayURL, token: token, [search, search])
                let (second, secondOutput) = try await policy.run(
                    secondURL, token: token, [search, search, search, ("corp__read_file", "{}"), ("corp__db_query", #"{"sql": "SELECT 1"}"#)])
                let outcomes = (first.calls + second.calls).map { ($0["ok"] as? Bool == true) ? "ok" : "\($0["code"] as? Int ?? 0)" }
                #expect(outcomes == ["ok", "ok", "ok", "ok", "-32043", "ok", "-32044"], "\(firstOutput)\n\(secondOutput)")
                // A result larger than the policy lets the call return is withheld, not cut.
                let withheld = second.calls[4]["message"] as? String ?? ""
                #expect(withheld.contains("more than the policy lets it return (40)"), "\(withheld)")
                let refused = second.calls[2]["message"] as? String ?? ""
                #expect(refused.contains("Rate limit 'four-a-minute' reached") && refused.contains("retry after"), "\(refused)")
                let (third, thirdOutput) = try await policy.run(mesh.gatewayURL, token: token, [search])
                #expect(third.call("corp__web_search")["code"] as? Int == -32043, "\(thirdOutput)")
            }
        }
    }
}
