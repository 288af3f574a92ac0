import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import WardenContracts
import WardenIdentity
import WardenServiceKit
import _CryptoExtras

/// The authorization server's token endpoint against a running mesh (gateway, vault, policy): a
/// user signs in once with a password (its scrypt check timed on its own), allows a client, then
/// each round asks for a code (the consent is remembered), exchanges it, and refreshes the tokens
/// it got. Only the token endpoint's requests are timed.
struct OAuthBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "oauth", abstract: "OAuth token endpoint: code exchange and refresh latency.")

    @Option var gateway: String
    @Option var adminToken: String
    @Option var rounds = 300
    @Option(help: "NATS, to time the vault's and policy's parts on their own.") var natsURL: String?

    static let redirect = "http://127.0.0.1:4567/cb"
    static let password = "bench password 0123456789"

    struct Failure: Error, CustomStringConvertible { var description: String }

    final class Browser: @unchecked Sendable {
        let base: String
        var cookies: [String: String] = [:]
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

        init(base: String) { self.base = base }

        func send(_ method: HTTPMethod, _ path: String, form: [String: String]? = nil, json: String? = nil, bearer: String? = nil) async throws -> (
            status: UInt, location: String?, body: String
        ) {
            var request = HTTPClientRequest(url: path.hasPrefix("http") ? path : base + path)
            request.method = method
            if !cookies.isEmpty { request.headers.add(name: "Cookie", value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")) }
            if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
            if let form {
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(string: form.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")))
            } else if let json {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: json))
            }
            let response = try await http.execute(request, timeout: .seconds(30))
            for header in response.headers[canonicalForm: "set-cookie"] {
                let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
                if pair.count == 2 { cookies[String(pair[0])] = String(pair[1]) }
            }
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            return (response.status.code, response.headers.first(name: "Location"), body)
        }

        static func encode(_ text: String) -> String {
            text.addingPercentEncoding(
                withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"))
                ?? ""
        }

        static func hidden(_ page: String) -> [String: String] {
            var fields: [String: String] = [:]
            for match in page.matches(of: /<input type="hidden" name="([^"]+)" value="([^"]*)">/) {
                fields[String(match.1)] = String(match.2).replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&quot;", with: "\"")
                    .replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(
                        of: "&gt;", with: ">")
            }
            return fields
        }
    }

    func run() async throws {
        let admin = Browser(base: gateway)
        func adminCall(_ method: HTTPMethod, _ path: String, _ json: String) async throws -> String {
            let answer = try await admin.send(method, path, json: json, bearer: adminToken)
            guard (200..<300).contains(answer.status) else { throw Failure(description: "\(method) \(path): \(answer.status) \(answer.body)") }
            return answer.body
        }
        _ = try await adminCall(.POST, "/admin/v1/orgs", #"{"id": "bench", "name": "bench"}"#)
        let user =
            try JSONDecoder().decode(
                [String: AnyCodableString].self,
                from: Data(try await adminCall(.POST, "/admin/v1/orgs/bench/users", #"{"email": "ada@bench.example", "role": "owner"}"#).utf8)
            )["id"]?.value ?? ""
        _ = try await adminCall(.PUT, "/admin/v1/orgs/bench/users/\(user)/password", #"{"password": "\#(Self.password)"}"#)
        let registration = try await admin.send(.POST, "/oauth/register", json: #"{"client_name": "bench", "redirect_uris": ["\#(Self.redirect)"]}"#)
        let clientID = try JSONDecoder().decode([String: AnyCodableString].self, from: Data(registration.body.utf8))["client_id"]?.value ?? ""

        // The KDF alone, as the vault runs it (scrypt N = 2^15, r = 8, p = 1).
        let clock = ContinuousClock()
        var kdf: [Duration] = []
        for _ in 0..<5 {
            let start = clock.now
            _ = try KDF.Scrypt.deriveKey(
                from: Array(Self.password.utf8), salt: Array(repeating: UInt8(7), count: 16), outputByteCount: 32, rounds: 1 << 15, blockSize: 8,
                parallelism: 1)
            kdf.append(clock.now - start)
        }
        print("password KDF (scrypt N=2^15, r=8, p=1, 32 MiB) alone: p50 \(BenchSupport.percentile(kdf.sorted(), 0.5)) (5 runs)")

        let browser = Browser(base: gateway)
        func authorizeURL() -> (String, String) {
            let verifier = Base64URL.encode((0..<48).map { _ in UInt8.random(in: 0...255) })
            let challenge = Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8))))
            let query = [
                ("response_type", "code"), ("client_id", clientID), ("redirect_uri", Self.redirect), ("state", "s"), ("code_challenge", challenge),
                ("code_challenge_method", "S256"), ("scope", "mcp"),
            ].map { "\($0.0)=\(Browser.encode($0.1))" }.joined(separator: "&")
            return ("/oauth/authorize?" + query, verifier)
        }
        func code(from location: String?) throws -> String {
            guard let location, let code = URLComponents(string: location)?.queryItems?.first(where: { $0.name == "code" })?.value else {
                throw Failure(description: "no code in \(location ?? "nil")")
            }
            return code
        }
        // Sign in (timed: the password check is most of it) and allow the client once.
        var (url, verifier) = authorizeURL()
        let signInPage = try await browser.send(.GET, url)
        var fields = Browser.hidden(signInPage.body)
        fields["org"] = "bench"
        fields["email"] = "ada@bench.example"
        fields["password"] = Self.password
        var signIns: [Duration] = []
        let start = clock.now
        let signedIn = try await browser.send(.POST, "/oauth/sign-in", form: fields)
        signIns.append(clock.now - start)
        guard signedIn.status == 303, let next = signedIn.location else { throw Failure(description: "sign-in: \(signedIn.status) \(signedIn.body)") }
        print("sign-in with a password through the gateway (one request): \(BenchSupport.percentile(signIns, 0.5))")
        let consentPage = try await browser.send(.GET, next)
        var consent = Browser.hidden(consentPage.body)
        consent["decision"] = "approve"
        var firstCode = try code(from: try await browser.send(.POST, "/oauth/consent", form: consent).location)

        let tokenClient = Browser(base: gateway)
        var exchanges: [Duration] = [], refreshes: [Duration] = []
        for round in 0..<(rounds + 20) {
            if round > 0 {
                (url, verifier) = authorizeURL()
                firstCode = try code(from: try await browser.send(.GET, url).location)
            }
            let started = clock.now
            let exchanged = try await tokenClient.send(
                .POST, "/oauth/token",
                form: [
                    "grant_type": "authorization_code", "code": firstCode, "code_verifier": verifier, "redirect_uri": Self.redirect,
                    "client_id": clientID,
                ])
            let exchangeTime = clock.now - started
            guard exchanged.status == 200,
                let refresh = try JSONDecoder().decode([String: AnyCodableString].self, from: Data(exchanged.body.utf8))["refresh_token"]?.value
            else { throw Failure(description: "exchange: \(exchanged.status) \(exchanged.body)") }
            let refreshStarted = clock.now
            let refreshed = try await tokenClient.send(
                .POST, "/oauth/token", form: ["grant_type": "refresh_token", "refresh_token": refresh, "client_id": clientID])
            let refreshTime = clock.now - refreshStarted
            guard refreshed.status == 200 else { throw Failure(description: "refresh: \(refreshed.status) \(refreshed.body)") }
            // The first 20 rounds warm connections and caches.
            if round >= 20 {
                exchanges.append(exchangeTime)
                refreshes.append(refreshTime)
            }
        }
        func line(_ name: String, _ unsorted: [Duration]) {
            let samples = unsorted.sorted()
            print(
                "\(name) (\(samples.count) requests): p50 \(BenchSupport.percentile(samples, 0.5)), p90 \(BenchSupport.percentile(samples, 0.9)), p99 \(BenchSupport.percentile(samples, 0.99))"
            )
        }
        // The floor of any request here: the same client and gateway answering a static document.
        var floor: [Duration] = []
        for round in 0..<(rounds + 20) {
            let started = clock.now
            _ = try await tokenClient.send(.GET, "/.well-known/oauth-authorization-server")
            if round >= 20 { floor.append(clock.now - started) }
        }
        line("HTTP floor: the gateway answering its metadata document", floor)
        line("token endpoint, authorization code exchange", exchanges)
        line("token endpoint, refresh (rotating the refresh token)", refreshes)
        if let natsURL {
            // The parts: the vault's refresh grant over NATS as the gateway asks for it (its
            // transaction, the policy check, signing, the audit event), and policy's check alone.
            let connection = try await BenchSupport.connect(natsURL, name: "bench-oauth", inboxScope: "gateway")
            let client = ServiceClient(bus: connection, caller: "gateway/bench")
            let (codeURL, codeVerifier) = authorizeURL()
            let code = try code(from: try await browser.send(.GET, codeURL).location)
            let first = try await client.call(
                AuthorizationEndpoints.token,
                TokenGrant(
                    kind: .authorizationCode, clientID: clientID, code: code, codeVerifier: codeVerifier, redirectURI: Self.redirect, issuer: gateway)
            )
            guard var refresh = first.refreshToken, let access = first.accessToken else { throw Failure(description: "no tokens over NATS") }
            var vault: [Duration] = [], policy: [Duration] = []
            let claims = try JSONDecoder().decode(
                [String: AnyCodableString].self, from: Data(Base64URL.decode(String(access.split(separator: ".")[1])) ?? []))
            let agent = AgentReference(org: "bench", agent: claims["sub"]?.value ?? "")
            for round in 0..<(rounds + 20) {
                let started = clock.now
                let next = try await client.call(
                    AuthorizationEndpoints.token, TokenGrant(kind: .refreshToken, clientID: clientID, refreshToken: refresh, issuer: gateway))
                let vaultTime = clock.now - started
                refresh = try next.refreshToken ?? { throw Failure(description: "refresh over NATS: \(next.error ?? "?")") }()
                let resolveStarted = clock.now
                _ = try await client.call(PrincipalEndpoints.resolveAgent, agent)
                let policyTime = clock.now - resolveStarted
                if round >= 20 {
                    vault.append(vaultTime)
                    policy.append(policyTime)
                }
            }
            line("of which the vault's refresh grant over NATS", vault)
            line("of which policy's agent check over NATS", policy)
        }
        try await admin.http.shutdown()
        try await browser.http.shutdown()
        try await tokenClient.http.shutdown()
    }
}

/// A JSON value read as a string when it is one (ids in admin answers).
struct AnyCodableString: Decodable {
    var value: String?
    init(from decoder: any Decoder) throws { value = try? decoder.singleValueContainer().decode(String.self) }
}
