import Testing
import WardenContracts
import WardenMCP
import WardenServiceKit

@testable import WardenGateway

@Suite struct CredentialTemplateTests {
    @Test func referencesAreParsedAloneOrMixedWithText() throws {
        #expect(try CredentialTemplate(parsing: "secret://github/token").parts == [.secret(.init(path: "github/token", version: nil))])
        #expect(try CredentialTemplate(parsing: "secret://github/token#3").references == [.init(path: "github/token", version: 3)])
        let mixed = try CredentialTemplate(parsing: "Bearer ${secret://a/b} and ${secret://c#2}!")
        #expect(mixed.references.map(\.description) == ["secret://a/b", "secret://c#2"])
        #expect(mixed.literalText == "Bearer  and !")
        #expect(mixed.render { $0.path.uppercased() } == "Bearer A/B and C!")
        #expect(try CredentialTemplate(parsing: "plain value").references.isEmpty)
    }

    @Test func oauthConnectionsAreReferencedByName() throws {
        let whole = try CredentialTemplate(parsing: "oauth://github")
        #expect(whole.references == [.init(path: "github", version: nil, kind: .oauth)])
        let bearer = try CredentialTemplate(parsing: "Bearer ${oauth://github} for ${secret://a} at ${HOME}")
        #expect(bearer.references.map(\.description) == ["oauth://github", "secret://a"])
        #expect(bearer.literalText == "Bearer  for  at ${HOME}")
        for bad in [
            "oauth://", "oauth://a/b", "${oauth://..}", "${oauth://x", "secret://oauth/github/grant", "Bearer ${secret://users/u1/oauth/gh/client}",
        ] {
            #expect(throws: CredentialTemplate.ParseError.self, "\(bad)") { try CredentialTemplate(parsing: bad) }
        }
    }

    @Test func anOAuthConnectionResolvesToTheUsersOwnGrantOnAPerUserInstance() {
        let template = ["Authorization": "Bearer ${oauth://github}"]
        let org = ServerCredentials(serverID: "gh", org: "acme", environment: [:], headers: template, resolver: nil)
        let mine = ServerCredentials(serverID: "gh", org: "acme", user: "u1", environment: [:], headers: template, resolver: nil)
        let locator = CredentialTemplate.SecretLocator(path: "github", version: nil, kind: .oauth)
        #expect(org.vaultPath(locator) == "oauth/github/grant")
        #expect(mine.vaultPath(locator) == "users/u1/oauth/github/grant")
        // A refresh (announced as a change of the grant) stops no instance: headers are rendered per request.
        #expect(!mine.uses(SecretChanged(org: "acme", path: "users/u1/oauth/github/grant"), environmentOnly: false))
    }

    @Test func aMissingConnectionSaysHowToConnectIt() {
        let user = CredentialError(connection: OAuthGrantReference(org: "acme", name: "github", user: "u1"), .missing, "it is not connected")
        #expect(user.description.hasSuffix("(connect it with: warden oauth connect github --org acme --user u1)"), "\(user)")
        let shared = CredentialError(connection: OAuthGrantReference(org: SecretReference.sharedOrg, name: "github"), .missing, "x")
        #expect(shared.description.contains("warden oauth connect github --shared)"), "\(shared)")
        let down = CredentialError(connection: OAuthGrantReference(org: "acme", name: "github"), .unavailable, "the vault is not running")
        #expect(!down.description.contains("connect it with"), "\(down)")
    }

    @Test func aURLRefersToSecretsInItsQueryOnlyAndGetsThemPercentEncoded() throws {
        let url = try CredentialURL(parsing: "https://api.example/mcp?key=${secret://svc/key}&mode=on")
        #expect(url.references.map(\.description) == ["secret://svc/key"])
        #expect(url.render { _ in "a b&c/é" } == "https://api.example/mcp?key=a%20b%26c%2F%C3%A9&mode=on")
        #expect(url.placeholderURL == "https://api.example/mcp?key=x&mode=on")
        #expect(url.queryItems.map(\.name) == ["key", "mode"])
        #expect(url.queryItems.first?.template.references.map(\.description) == ["secret://svc/key"])
        for bad in ["https://${secret://host}/mcp", "https://api.example/${secret://p}?a=b", "secret://a"] {
            #expect(throws: CredentialTemplate.ParseError.self, "\(bad)") { try CredentialURL(parsing: bad) }
        }
        let literal = try CredentialURL(parsing: "https://api.example/mcp?token=ghp_abcdefghijklmnop")
        let problem = literal.queryItems.compactMap {
            LiteralCredentialCheck.problem(server: "api", setting: .query, name: $0.name, template: $0.template)
        }
        #expect(problem.first?.contains("servers/api/query/token") == true, "\(problem)")
    }

    @Test func badReferencesAreRefusedWithTheReason() {
        for (value, reason) in [
            ("secret://", "not a secret path"), ("${secret://a/../b}", "not a secret path"), ("secret://a#0", "positive number"),
            ("${secret://a", "not closed"), ("secret://a b", "not a secret path"), ("secret:///a", "not a secret path"),
        ] {
            let error = #expect(throws: CredentialTemplate.ParseError.self) { try CredentialTemplate(parsing: value) }
            #expect(error?.description.contains(reason) == true, "\(value): \(String(describing: error))")
        }
    }

    @Test func literalCredentialsAreRefusedAndOrdinaryValuesAccepted() {
        func problem(_ setting: LiteralCredentialCheck.Setting, _ name: String, _ value: String) -> String? {
            LiteralCredentialCheck.problem(server: "github", setting: setting, name: name, template: try! CredentialTemplate(parsing: value))
        }
        #expect(
            problem(.header, "Authorization", "Bearer abcdefgh12345678")?.contains("warden secret set servers/github/headers/Authorization") == true)
        #expect(problem(.environment, "GITHUB_TOKEN", "abcdefgh12345678") != nil)
        #expect(problem(.environment, "ANYTHING", "ghp_abcdefghijklmnop") != nil)
        #expect(problem(.header, "Authorization", "Bearer ${secret://github/token}") == nil)
        #expect(problem(.environment, "GITHUB_TOKEN", "secret://github/token") == nil)
        #expect(problem(.environment, "LOG_LEVEL", "debug") == nil)
        #expect(problem(.environment, "DATA_DIR", "/var/lib/server/data") == nil)
        #expect(problem(.environment, "TOKEN_LIMIT", "100") == nil)
        let message = problem(.header, "Authorization", "Bearer abcdefgh12345678") ?? ""
        #expect(!message.contains("abcdefgh12345678"), "the value is never echoed")
    }

    @Test func aServerDefinitionSaysWhatIsWrongWithItsValues() {
        let bad = MCPServerDefinition(id: "x", command: "run", env: ["K": "${secret://a"])
        #expect(bad.problem?.contains("env 'K'") == true)
        let plain = MCPServerDefinition(id: "x", url: "https://x.example/mcp", headers: ["X-API-Key": "0123456789abcdef"])
        #expect(plain.problem == nil && plain.plaintextCredentialProblem != nil)
        let good = MCPServerDefinition(id: "x", url: "https://x.example/mcp", headers: ["Authorization": "Bearer ${secret://x/token}"])
        #expect(good.plaintextCredentialProblem == nil && good.view.secrets == ["secret://x/token"])
    }

    @Test func theLeakGuardScrubsEveryPartOfAMessageAndSplitsAcrossMessages() {
        let key = "ghp_0123456789abcdefABCDEF"
        let redactor = SecretRedactor(secrets: [(label: "github/token", value: key)])
        var leakGuard = LeakGuard(redactor)
        let marker = JSONValue.string("[redacted:github/token]")
        let result = leakGuard.scrub(
            .result(id: .number("1"), result: .object([("content", .array([.object([("type", .string("text")), ("text", .string(key))])]))])))
        #expect(
            result == .result(id: .number("1"), result: .object([("content", .array([.object([("type", .string("text")), ("text", marker)])]))])))
        let error = leakGuard.scrub(.error(id: .number("2"), JSONRPCError(code: -1, message: "bad key \(key)", data: .string(key))))
        #expect(error == .error(id: .number("2"), JSONRPCError(code: -1, message: "bad key [redacted:github/token]", data: marker)))
        // Two progress notifications, each with half the key, keys and a token between them.
        func progress(_ text: String) -> JSONRPCMessage {
            .notification(
                method: "notifications/progress",
                params: .object([("progressToken", .string("t-1")), ("progress", .number("1")), ("message", .string(text))]))
        }
        let halves = [String(key.prefix(12)), String(key.dropFirst(12))]
        #expect(leakGuard.scrub(progress(halves[0])) == progress("[redacted:github/token]"))
        #expect(leakGuard.scrub(progress(halves[1])) == progress("[redacted:github/token]"))
        #expect(leakGuard.scrub(progress("all done")) == progress("all done"))
    }
}
