import Foundation
import Logging
import Testing
import WardenContracts

@testable import WardenGateway

/// The authorization server's rules that need no process: redirect URIs, authorization requests,
/// metadata documents and the addresses they may be fetched from, and what pages show.
@Suite struct AuthorizationRequestTests {
    static let audience = "https://warden.example/mcp"

    @Test func redirectURIsAreHTTPSLoopbackOrAnAppsOwnScheme() {
        #expect(RedirectURI.problem("https://claude.ai/api/mcp/auth_callback") == nil)
        #expect(RedirectURI.problem("http://127.0.0.1:33418/callback") == nil)
        #expect(RedirectURI.problem("http://localhost/cb") == nil)
        #expect(RedirectURI.problem("cursor://anysphere.cursor-retrieval/oauth/callback") == nil)
        #expect(RedirectURI.problem("http://example.com/cb")?.contains("loopback") == true)
        #expect(RedirectURI.problem("javascript:alert(1)") != nil)
        #expect(RedirectURI.problem("https://app.example/cb#frag")?.contains("fragment") == true)
        #expect(RedirectURI.problem("") != nil)
        #expect(RedirectURI.problem("https://" + String(repeating: "a", count: 2000)) != nil)
    }

    @Test func registeredURIsMatchExactlyButLoopbackOnesOnAnyPort() {
        let registered = ["http://127.0.0.1/cb", "https://app.example/cb"]
        #expect(RedirectURI.isRegistered("https://app.example/cb", in: registered))
        #expect(RedirectURI.isRegistered("http://127.0.0.1:51234/cb", in: registered))
        #expect(!RedirectURI.isRegistered("http://127.0.0.1:51234/other", in: registered))
        #expect(!RedirectURI.isRegistered("http://localhost:51234/cb", in: registered), "another loopback host is another URI")
        #expect(!RedirectURI.isRegistered("https://app.example:8443/cb", in: registered), "only loopback URIs match any port")
        #expect(!RedirectURI.isRegistered("https://app.example/cb?x=1", in: registered))
        #expect(!RedirectURI.isRegistered("https://app.example/cb/", in: registered))
    }

    @Test func answersKeepTheRedirectsQueryAndAddStateAndIssuer() {
        let request = AuthorizationRequest(["state": "a b&c", "client_id": "x"])
        let location = request.redirect("https://app.example/cb?keep=1", issuer: "https://warden.example", [("code", "c1")])
        let items = URLComponents(string: location)?.queryItems ?? []
        #expect(items.map(\.name) == ["keep", "code", "state", "iss"])
        #expect(items.first { $0.name == "state" }?.value == "a b&c")
        #expect(items.first { $0.name == "iss" }?.value == "https://warden.example")
    }

    func grant(_ fields: [String: String]) -> Result<AuthorizationRequest.Grant, AuthorizationRequest.Refusal> {
        var parameters = ["response_type": "code", "code_challenge": String(repeating: "a", count: 43), "code_challenge_method": "S256"]
        parameters.merge(fields) { $1 }
        do throws(AuthorizationRequest.Refusal) {
            return .success(try AuthorizationRequest(parameters.filter { !$0.value.isEmpty }).grant(audience: Self.audience))
        } catch {
            return .failure(error)
        }
    }

    func error(_ fields: [String: String]) -> String? {
        if case .failure(let refusal) = grant(fields) { return refusal.error }
        return nil
    }

    @Test func requestsNeedTheCodeFlowPKCEWithS256KnownScopesAndThisGatewayAsResource() throws {
        let plain = try grant([:]).get()
        #expect(plain.scopes == ["mcp"] && plain.resource == Self.audience)
        #expect(try grant(["scope": "offline_access", "resource": Self.audience + "/"]).get().scopes == ["mcp", "offline_access"])
        #expect(error(["response_type": "token"]) == "unsupported_response_type")
        #expect(error(["code_challenge": ""]) == "invalid_request")
        #expect(error(["code_challenge_method": ""]) == "invalid_request", "no method means plain (RFC 7636), which is refused")
        #expect(error(["code_challenge_method": "plain"]) == "invalid_request")
        #expect(error(["code_challenge": "short"]) == "invalid_request")
        #expect(error(["code_challenge": String(repeating: "+", count: 43)]) == "invalid_request")
        #expect(error(["scope": "mcp admin"]) == "invalid_scope")
        #expect(error(["resource": "https://other.example/mcp"]) == "invalid_target")
        #expect(error(["state": String(repeating: "s", count: 1025)]) == "invalid_request")
    }

    @Test func aSignInAnswersPromptLoginOnce() {
        let request = AuthorizationRequest(["client_id": "x", "prompt": "login", "state": "s", "unknown": "dropped"])
        #expect(request.carried.map(\.0) == ["client_id", "state", "prompt"])
        #expect(request.afterSignIn.map(\.0) == ["client_id", "state"])
        #expect(AuthorizationRequest(["prompt": "consent"]).afterSignIn.map(\.1) == ["consent"])
    }

    @Test func metadataDocumentsAreFetchedFromPublicAddressesOnly() {
        for address in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::",
            "fe80::1", "fd00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::7f00:1", "2002:a00:1::", "64:ff9b::a00:1", "not an address",
        ] {
            #expect(!PublicAddress.isPublic(address), "\(address) is not public")
        }
        for address in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            #expect(PublicAddress.isPublic(address), "\(address) is public")
        }
    }

    @Test func aMetadataDocumentDescribesThePublicClientAtItsOwnURL() throws {
        let url = "https://client.example/oauth/client.json"
        func client(_ json: String) -> Result<AuthorizationClient, ClientMetadataDocuments.Refusal> {
            do throws(ClientMetadataDocuments.Refusal) {
                return .success(try ClientMetadataDocuments.client(from: Data(json.utf8), url: url))
            } catch {
                return .failure(error)
            }
        }
        let good = try client(#"{"client_id": "\#(url)", "client_name": "Example\u202E App", "redirect_uris": ["http://127.0.0.1/cb"]}"#).get()
        #expect(good.kind == .metadataDocument && good.id == url && good.name == "Example App", "bidirectional controls are removed")
        let unnamed = try client(#"{"client_id": "\#(url)", "redirect_uris": ["http://127.0.0.1/cb"]}"#).get()
        #expect(unnamed.name == "client.example")
        for bad in [
            #"{"client_id": "https://other.example/c.json", "redirect_uris": ["http://127.0.0.1/cb"]}"#,
            #"{"client_id": "\#(url)", "redirect_uris": ["http://127.0.0.1/cb"], "client_secret": "s"}"#,
            #"{"client_id": "\#(url)", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "client_secret_basic"}"#,
            #"{"client_id": "\#(url)", "redirect_uris": []}"#, #"{"client_id": "\#(url)", "redirect_uris": ["javascript:x"]}"#, "[]", "not json",
        ] {
            if case .success = client(bad) { Issue.record("accepted \(bad)") }
        }
    }

    @Test func onlyHTTPSOrAllowedOriginsAreDocumentURLs() {
        let documents = ClientMetadataDocuments(allowedOrigins: "http://localhost:8080/, https://Inside.example", logger: Logger(label: "test"))
        #expect(documents.isDocumentURL("https://client.example/c.json"))
        #expect(documents.isDocumentURL("http://localhost:8080/c.json"))
        #expect(!documents.isDocumentURL("http://localhost:8081/c.json"))
        #expect(!documents.isDocumentURL("wdc_abc"))
    }

    @Test func pagesEscapeWhatTheyShow() {
        #expect(AuthorizationPages.escape(#"<a href="x">'&'</a>"#) == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        #expect(AuthorizationPages.plain("  Evil\u{202E}gnp.exe \n", limit: 100) == "Evilgnp.exe")
        #expect(AuthorizationPages.plain(String(repeating: "x", count: 300), limit: 100).count == 100)
        #expect(AuthorizationPages.formTarget("http://127.0.0.1:4567/cb") == "http://127.0.0.1:4567")
        #expect(AuthorizationPages.formTarget("http://[::1]:4567/cb") == "http://[::1]:4567")
        #expect(AuthorizationPages.formTarget("cursor://anysphere/cb") == "cursor:")
    }
}
