import WardenContracts
import WardenMCP

/// The first permission layer: what each server exposes at all (its registry entry's exposure
/// lists), of what it listed. A name a server does not expose is "unknown", exactly like one it
/// does not have. A tool is called only by a name the server listed: the policy decided on this
/// exact name, and a server that took other spellings of it must not be reached by them. A server
/// that has not listed its tools yet (a per-user server's new instances) is waited for, up to
/// `listingTimeout`; one that does not list them in time is refused, never called unchecked.
struct ExposureStage: Sendable {
    var listingTimeout: Duration = .seconds(10)

    func run(_ target: RouteTarget, requested request: ClientRequest) async -> Result<RouteTarget, JSONRPCError> {
        func qualifiedName() -> String {
            let params = request.params
            return (params?["name"] ?? params?["uri"] ?? params?["ref"]?["name"] ?? params?["ref"]?["uri"])?.stringValue ?? "?"
        }
        var target = target
        if case .tool(let name) = target.item {
            let listing: DownstreamPool.Listing
            switch await target.pool.listing(timeout: listingTimeout) {
            case .success(let listed): listing = listed
            case .failure(let error):
                // As the call itself would have failed: the server's reason (a missing credential
                // says which and how to store it).
                if let serverError = error.serverError { return .failure(serverError) }
                if error.code == .credentials { return .failure(JSONRPCError(code: JSONRPCError.Code.credentialMissing, message: error.description)) }
                return .failure(.downstreamFailure("\(error.description); \(qualifiedName()) was not run"))
            }
            guard let entry = listing.tools[name] else { return .failure(.invalidParams("unknown tool: \(qualifiedName())")) }
            target.listed = (entry, listing.revision)
        }
        guard let exposure = target.exposure else { return .success(target) }
        switch target.item {
        case .tool(let name):
            return exposure.allows(.tool, name) ? .success(target) : .failure(.invalidParams("unknown tool: \(qualifiedName())"))
        case .prompt(let name):
            return exposure.allows(.prompt, name) ? .success(target) : .failure(.invalidParams("unknown prompt: \(qualifiedName())"))
        case .resource(let uri):
            return exposure.allowsResource(uri: uri) ? .success(target) : .failure(.resourceNotFound(qualifiedName()))
        }
    }
}
