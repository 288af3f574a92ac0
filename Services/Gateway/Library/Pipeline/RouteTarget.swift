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
}
