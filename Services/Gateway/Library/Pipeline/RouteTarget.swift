import WardenMCP

/// Where a forwarded request goes: the server, what it names there, and the params rewritten to the
/// server's own names.
struct RouteTarget: Sendable, Equatable {
    enum Item: Sendable, Equatable {
        case tool(String)
        case prompt(String)
        case resource(uri: String)
    }

    var server: String
    var item: Item
    var params: JSONValue
}
