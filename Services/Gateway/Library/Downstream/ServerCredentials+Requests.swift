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
}
