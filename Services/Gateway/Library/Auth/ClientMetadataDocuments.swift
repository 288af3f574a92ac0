import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenContracts
import WardenPolicyEngine

/// Client ID Metadata Documents: a client whose id is an HTTPS URL describes itself in the JSON
/// document at that URL. Fetching a URL a stranger chose is a server-side request forgery risk, so:
/// the host's addresses are resolved first and every one must be public (no loopback, private,
/// link-local, shared, multicast or reserved range), the connection goes to the address checked
/// (no second lookup an attacker's DNS could answer differently), no redirects, 5 seconds, 64 KiB.
/// Origins listed in `WARDEN_OAUTH_METADATA_ALLOWED_ORIGINS` skip the address check and may be
/// http (a client inside the network, or a test).
package struct ClientMetadataDocuments: Sendable {
    let allowedOrigins: Set<String>
    let logger: Logger

    static let maximumBytes = 64 << 10
    static let timeout: TimeAmount = .seconds(5)
    /// How long a fetched document is used before it is fetched again.
    package static let maximumAge: Int64 = 600

    package init(allowedOrigins: String?, logger: Logger) {
        self.allowedOrigins = Set(
            (allowedOrigins ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }.map {
                $0.hasSuffix("/") ? String($0.dropLast()) : $0
            })
        self.logger = logger
    }

    package struct Refusal: Error, CustomStringConvertible {
        package let description: String
        /// Warden's own trouble (try again later) rather than the client's.
        package let unavailable: Bool
        init(_ description: String, unavailable: Bool = false) {
            self.description = description
            self.unavailable = unavailable
        }
    }

    /// Whether a client id names a metadata document (an https URL, or one at an allowed origin).
    package func isDocumentURL(_ clientID: String) -> Bool {
        let lower = clientID.lowercased()
        return lower.hasPrefix("https://") || (lower.hasPrefix("http://") && allowedOrigins.contains(Self.origin(of: clientID) ?? ""))
    }

    /// The client the document at `url` describes.
    package func fetch(_ url: String) async throws(Refusal) -> AuthorizationClient {
        guard url.utf8.count <= 2048, let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty, components.fragment == nil, components.user == nil, components.password == nil
        else { throw Refusal("the client id is not a URL usable as a metadata document's address") }
        guard components.path.count > 1 else { throw Refusal("a metadata document's URL has a path (not just '/')") }
        let allowed = allowedOrigins.contains(Self.origin(of: url) ?? "")
        guard scheme == "https" || allowed else { throw Refusal("a metadata document's URL must be https") }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: Self.timeout, read: Self.timeout))
        if !allowed {
            let addresses = try await Self.publicAddresses(of: host)
            // Connect to the address checked; TLS still verifies the certificate for `host`.
            configuration.dnsOverride = [host: addresses[0]]
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        // 5 seconds in all: the body too (a server trickling bytes cannot hold the request).
        let outcome = await withTaskGroup(of: Result<ByteBuffer, Refusal>?.self) { group in
            group.addTask { await Self.download(url, with: client, logger: logger) }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return Task.isCancelled ? nil : .failure(Refusal("the metadata document cannot be fetched (timed out)"))
            }
            var first: Result<ByteBuffer, Refusal> = .failure(Refusal("the metadata document cannot be fetched (timed out)"))
            for await result in group {
                if let result {
                    first = result
                    break
                }
            }
            group.cancelAll()
            return first
        }
        try? await client.shutdown()
        return try Self.client(from: Data(try outcome.get().readableBytesView), url: url)
    }

    static func download(_ url: String, with client: HTTPClient, logger: Logger) async -> Result<ByteBuffer, Refusal> {
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await client.execute(request, timeout: .seconds(5))
            guard response.status == .ok else { return .failure(Refusal("the metadata document's URL answered HTTP \(response.status.code)")) }
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > Self.maximumBytes {
                return .failure(Refusal("the metadata document is larger than 64 KiB"))
            }
            do {
                return .success(try await response.body.collect(upTo: Self.maximumBytes))
            } catch is NIOTooManyBytesError {
                return .failure(Refusal("the metadata document is larger than 64 KiB"))
            }
        } catch {
            logger.info("cannot fetch a client metadata document", metadata: ["url": "\(url.prefix(256))", "error": "\(error)"])
            return .failure(Refusal("the metadata document cannot be fetched (\(Self.reason(error)))"))
        }
    }

    struct Document: Decodable {
        var clientID: String?
        var clientName: String?
        var redirectURIs: [String]?
        var tokenEndpointAuthMethod: String?
        var clientSecret: String?

        enum CodingKeys: String, CodingKey {
            case clientID = "client_id", clientName = "client_name", redirectURIs = "redirect_uris"
            case tokenEndpointAuthMethod = "token_endpoint_auth_method", clientSecret = "client_secret"
        }
    }

    /// The document's client: its `client_id` must be the URL it came from, its redirect URIs
    /// acceptable, and it must be a public client (no secret: PKCE protects its codes).
    static func client(from data: Data, url: String) throws(Refusal) -> AuthorizationClient {
        guard let document = try? JSONDecoder().decode(Document.self, from: data) else {
            throw Refusal("the metadata document is not a JSON object of client metadata")
        }
        guard document.clientID == url else { throw Refusal("the metadata document's client_id is not the URL it was fetched from") }
        guard document.clientSecret == nil, (document.tokenEndpointAuthMethod ?? "none") == "none" else {
            throw Refusal("a metadata document describes a public client (token_endpoint_auth_method none, no client_secret)")
        }
        guard let uris = document.redirectURIs, !uris.isEmpty, uris.count <= 20 else {
            throw Refusal("the metadata document lists 1 to 20 redirect_uris")
        }
        for uri in uris {
            if let problem = RedirectURI.problem(uri) { throw Refusal("the metadata document's redirect URI: \(problem)") }
        }
        let host = URLComponents(string: url)?.host ?? url
        let name = AuthorizationPages.plain(document.clientName ?? host, limit: 100)
        return AuthorizationClient(id: url, kind: .metadataDocument, name: name.isEmpty ? host : name, redirectURIs: uris)
    }

    static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host?.lowercased()
        else { return nil }
        return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) { return "timed out" }
        return "connection failed"
    }

    // MARK: Addresses

    /// The host's addresses, every one public (`PublicAddress`); the first to connect to.
    static func publicAddresses(of host: String) async throws(Refusal) -> [String] {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard let addresses = await PublicAddress.addresses(of: bare, within: .seconds(5)), !addresses.isEmpty else {
            throw Refusal("the metadata document's host cannot be resolved")
        }
        guard addresses.allSatisfy(PublicAddress.isPublic) else {
            throw Refusal("the metadata document's URL points at a loopback, private, link-local or reserved address")
        }
        return addresses
    }
}
