extension ServerCredentials {
    /// An HTTP server's configured headers with their secrets resolved (through the resolver's
    /// cache), for one request; a credential that cannot be resolved fails the request.
    func requestHeaders() async throws(DownstreamError) -> [String: String] {
        do {
            return try await resolvedHeaders()
        } catch {
            throw DownstreamError(.credentials, server: serverID, "\(error)")
        }
    }

    /// The URL to send a request to: `configured`, or, when its query refers to secrets, with them
    /// resolved (the URL is never logged: errors show `HTTPServerSpec.origin`).
    func requestURL(_ configured: String) async throws(DownstreamError) -> String {
        do {
            return try await resolvedURL() ?? configured
        } catch {
            throw DownstreamError(.credentials, server: serverID, "\(error)")
        }
    }
}
