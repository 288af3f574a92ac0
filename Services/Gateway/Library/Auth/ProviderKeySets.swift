import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// JWKS documents of trusted identity providers that publish them at a URL: fetched on first use,
/// kept for 10 minutes, and fetched again (at most every 5 seconds per URL) when a token does not
/// verify with them, so that a provider's key rotation is followed without a restart.
package final class ProviderKeySets: Sendable {
    struct Entry {
        var document: String
        var fetchedAt: ContinuousClock.Instant
    }

    static let maximumAge: Duration = .seconds(600)
    static let minimumRefetchInterval: Duration = .seconds(5)
    static let maximumBytes = 1 << 20

    let logger: Logger
    private let entries = Mutex<[String: Entry]>([:])

    package init(logger: Logger) {
        self.logger = logger
    }

    package struct FetchError: Error, CustomStringConvertible {
        package let description: String
    }

    /// The document at `url`: cached, or fetched when older than 10 minutes or when `stale` (a
    /// token failed to verify) and the last fetch is old enough.
    package func document(at url: String, stale: Bool = false) async throws(FetchError) -> String {
        if let entry = entries.withLock({ $0[url] }) {
            let age = ContinuousClock.now - entry.fetchedAt
            if age < Self.maximumAge && (!stale || age < Self.minimumRefetchInterval) { return entry.document }
        }
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/jwk-set+json, application/json")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            guard response.status == .ok else { throw FetchError(description: "the provider's JWKS URL answered HTTP \(response.status.code)") }
            let body = try await response.body.collect(upTo: Self.maximumBytes)
            let document = String(buffer: body)
            guard document.contains("\"keys\"") else { throw FetchError(description: "the provider's JWKS URL did not answer a JWKS document") }
            entries.withLock { $0[url] = Entry(document: document, fetchedAt: .now) }
            return document
        } catch let error as FetchError {
            logger.warning("cannot fetch a trusted provider's keys", metadata: ["jwks.url": "\(url)", "error": "\(error)"])
            throw error
        } catch {
            logger.warning("cannot fetch a trusted provider's keys", metadata: ["jwks.url": "\(url)", "error": "\(error)"])
            throw FetchError(description: "the provider's JWKS URL cannot be reached")
        }
    }
}
