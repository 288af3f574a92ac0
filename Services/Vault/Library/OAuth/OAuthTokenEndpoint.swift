import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A provider's token endpoint: exchanges an authorization code (with its PKCE verifier) or a
/// refresh token for tokens. The client authenticates with HTTP Basic when it has a secret
/// (RFC 6749 §2.3.1), else names itself in the form (a public client).
package struct OAuthTokenEndpoint: Sendable {
    package var timeout: TimeAmount = .seconds(10)

    package init() {}

    /// Follows no redirect: a token endpoint that redirects would carry codes and refresh tokens
    /// somewhere nobody configured. Lives as long as the process.
    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    package func exchange(code: String, verifier: String, redirectURI: String, client: OAuthClientRecord) async throws(OAuthProviderError)
        -> OAuthTokenResponse
    {
        try await post(
            ["grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI, "code_verifier": verifier], client: client)
    }

    package func refresh(_ refreshToken: String, client: OAuthClientRecord) async throws(OAuthProviderError) -> OAuthTokenResponse {
        try await post(["grant_type": "refresh_token", "refresh_token": refreshToken], client: client)
    }

    private func post(_ fields: [String: String], client: OAuthClientRecord) async throws(OAuthProviderError) -> OAuthTokenResponse {
        var fields = fields
        var request = HTTPClientRequest(url: client.tokenURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        if let secret = client.clientSecret {
            let pair = Self.formEncode(client.clientID) + ":" + Self.formEncode(secret)
            request.headers.add(name: "Authorization", value: "Basic " + Data(pair.utf8).base64EncodedString())
        } else {
            fields["client_id"] = client.clientID
        }
        let body = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.formEncode($0.value))" }.joined(separator: "&")
        request.body = .bytes(ByteBuffer(string: body))
        let status: HTTPResponseStatus
        let payload: ByteBuffer
        do {
            let response = try await Self.client.execute(request, timeout: timeout)
            status = response.status
            payload = try await response.body.collect(upTo: 256 << 10)
        } catch {
            throw .unreachable("the token endpoint did not answer (\(type(of: error)))")
        }
        let data = Data(payload.readableBytesView)
        if status == .ok, let tokens = try? JSONDecoder().decode(OAuthTokenResponse.self, from: data), !tokens.accessToken.isEmpty {
            if let type = tokens.tokenType, type.lowercased() != "bearer" {
                throw .unreachable("the token endpoint gave a '\(type.prefix(32))' token, not a bearer token")
            }
            return tokens
        }
        // Some providers (GitHub) answer errors with 200.
        if status == .ok || (400..<500).contains(status.code), let failure = try? JSONDecoder().decode(Failure.self, from: data) {
            throw .refused(error: Self.printable(failure.error, 64), description: failure.errorDescription.map { Self.printable($0, 200) })
        }
        throw .unreachable("the token endpoint answered HTTP \(status.code) without tokens")
    }

    struct Failure: Decodable {
        var error: String
        var errorDescription: String?
        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }
    }

    /// What RFC 6749 allows in `error` and `error_description` (printable ASCII), shortened: the
    /// provider's words are shown to operators and agents.
    static func printable(_ text: String, _ limit: Int) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { (0x20...0x7E).contains($0.value) && $0 != "\\" && $0 != "\"" }.prefix(limit)))
    }

    /// `application/x-www-form-urlencoded` (unreserved characters as they are).
    static func formEncode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
