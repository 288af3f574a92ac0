import WardenContracts
import WardenMCP

/// Where a forwarded request goes: the server (its pool and exposure lists, looked up once), what
/// it names there, and the params rewritten to the server's own names.
struct RouteTarget: Sendable {
    enum Item: Sendable, Equatable {
        case tool(String)
        case prompt(String)
        case resource(uri: String)
    }

    var server: String
    var pool: DownstreamPool
    var exposure: Exposure?
    var item: Item
    var params: JSONValue
    /// A per-user server's credentials for the caller's user (checked by `CredentialStage`).
    var userCredentials: ServerCredentials? = nil
    /// For a tool: its entry as the server listed it, and that listing's revision (set by
    /// `ExposureStage`; what `ToolPinStage` checks).
    var listed: (entry: JSONValue, revision: UInt64)? = nil
    /// The credentials the server is given (references, for the call's record).
    var credentialReferences: [String] = []
}

extension RouteTarget {
    init(server: String, route: DownstreamRegistry.Route, item: Item, params: JSONValue) {
        self.init(
            server: server, pool: route.pool, exposure: route.exposure, item: item, params: params, userCredentials: route.userCredentials,
            credentialReferences: route.credentialReferences)
    }
}
