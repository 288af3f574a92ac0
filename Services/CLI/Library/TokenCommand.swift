import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts
import WardenIdentity

/// `warden token issue`: an agent token signed by the vault, through the gateway's admin API
/// (admin token from `$WARDEN_ADMIN_TOKEN`). Print it once; give it to the agent as
/// `WARDEN_AGENT_TOKEN` or as a bearer token.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Issue agent tokens (admin token from $WARDEN_ADMIN_TOKEN).",
        subcommands: [Issue.self, Revoke.self, Inspect.self, RotateKeys.self]
    )

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a short-lived agent token.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Option(help: "The agent id the token is for (it acts for its owner).") var agent: String
        @Option(name: .customLong("scope"), help: "A scope (repeat; default: mcp).") var scopes: [String] = []
        @Option(help: "Lifetime in seconds (default 900).") var lifetime: Int = 900
        @Flag(help: "Print JSON (token, tokenID, expiresAt).") var json = false
        @OptionGroup var output: CredentialOutput

        func run() async throws {
            let fields: [String: JSONField] = [
                "agent": .string(agent), "org": .string(org), "lifetimeSeconds": .int(lifetime),
                "scopes": .array(scopes.isEmpty ? ["mcp"] : scopes),
            ]
            let body = try await AdminClient(gateway, path: "/admin/v1/tokens").send(.POST, "", body: .object(fields))
            try output.deliver(json ? String(decoding: body, as: UTF8.self) : try JSONDecoder().decode(SignedToken.self, from: body).token)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke one token, or every token an agent holds now (all gateways, within a second).")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The token id (jti) to revoke.") var tokenID: String?
        @Option(help: "Revoke every token issued to this agent until now.") var agent: String?
        @Option(help: "The agent's org (required with an org admin token).") var org: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard (tokenID == nil) != (agent == nil) else { throw ValidationError("give either --token-id or --agent") }
        }

        func run() async throws {
            var fields: [String: JSONField] = tokenID.map { ["tokenID": .string($0)] } ?? ["agent": .string(agent ?? "")]
            if let org { fields["org"] = .string(org) }
            let body = try await AdminClient(gateway, path: "/admin/v1/tokens/revoke").send(.POST, "", body: .object(fields))
            print(json ? String(decoding: body, as: UTF8.self) : "revoked \(tokenID.map { "token \($0)" } ?? "the tokens of agent \(agent ?? "")")")
        }
    }

    struct RotateKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-keys", abstract: "Add a new signing key; tokens signed with the previous ones stay valid until they expire."
        )
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print JSON (the public keys, newest first).") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/keys/rotate").send(.POST, "")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let keys = try JSONDecoder().decode(PublicSigningKeys.self, from: body).keys
            print("signing with \(keys.first?.kid ?? "?"); still validating \(keys.dropFirst().map(\.kid).joined(separator: ", "))")
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a token's header and claims (read from stdin when no argument); --verify also checks it as a gateway would."
        )
        @Argument(help: "The token (prefer stdin: arguments show in process listings).") var token: String?
        @Flag(help: "Check signature, issuer, audience and times against the gateway's published keys (--url).") var verify = false
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print JSON (header, claims, and the verification's outcome).") var json = false

        func run() async throws {
            let text = (token ?? readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3 else { throw ValidationError("not a JWT: expected three dot-separated parts") }
            func decode(_ part: Substring) throws -> [String: Any] {
                guard let bytes = Base64URL.decode(String(part)), let value = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
                else {
                    throw ValidationError("not a JWT: a part is not base64url JSON")
                }
                return value
            }
            let header = try decode(parts[0]), claims = try decode(parts[1])
            var document: [String: Any] = ["header": header, "claims": claims, "signatureChecked": verify]
            if verify {
                let verdict = await Self.verdict(text, gateway: gateway)
                document["valid"] = verdict == nil
                if let verdict { document["problem"] = verdict }
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
                return print(String(decoding: data, as: UTF8.self))
            }
            func time(_ key: String) -> String {
                guard let seconds = (claims[key] as? NSNumber)?.int64Value else { return "-" }
                let delta = seconds - Int64(Date().timeIntervalSince1970)
                return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
                    + (delta >= 0 ? " (in \(delta) s)" : " (\(-delta) s ago)")
            }
            var lines = [
                "key id     \(header["kid"] as? String ?? "-") (\(header["alg"] as? String ?? "?"))",
                "issuer     \(claims["iss"] as? String ?? "-")",
                "audience   \(claims["aud"] as? String ?? "-")",
                "agent      \(claims["sub"] as? String ?? "-") in org \(claims["org"] as? String ?? "-"), acting for \(claims["usr"] as? String ?? "-")",
                "scopes     \(claims["scope"] as? String ?? "-")",
                "token id   \(claims["jti"] as? String ?? "-")",
                "issued     \(time("iat"))",
                "expires    \(time("exp"))",
            ]
            if let roles = claims["roles"] as? [String] { lines.append("roles      \(roles.joined(separator: ", "))") }
            if verify {
                lines.append("verdict    " + ((document["problem"] as? String).map { "INVALID: \($0)" } ?? "valid (not checked: revocation)"))
            }
            print(lines.joined(separator: "\n"))
        }

        /// Nil when the token verifies with the gateway's keys for its issuer and audience, else why not.
        static func verdict(_ token: String, gateway: GatewayOptions) async -> String? {
            do {
                let jwks = try await AdminClient.fetch(gateway.resolvedURL + "/.well-known/jwks.json")
                let metadata = try await AdminClient.fetch(gateway.resolvedURL + "/.well-known/oauth-protected-resource")
                guard let resource = try JSONSerialization.jsonObject(with: metadata) as? [String: Any],
                    let audience = resource["resource"] as? String,
                    let issuer = (resource["authorization_servers"] as? [String])?.first
                else { return "the gateway's metadata names no issuer and audience" }
                let validator = try await AgentTokenValidator(issuer: issuer, audience: audience, keys: VerificationKey.fromJWKS(jwks))
                _ = try await validator.validate(token)
                return nil
            } catch let rejection as TokenRejection {
                return rejection.description
            } catch {
                return "cannot check: \(error)"
            }
        }
    }
}
