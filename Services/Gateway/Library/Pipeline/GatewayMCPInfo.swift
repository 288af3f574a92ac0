import WardenContracts
import WardenMCP

/// What the gateway tells MCP clients about itself: the protocol versions it speaks, its
/// capabilities, its name and its instructions.
enum GatewayMCPInfo {
    /// Handshake-era versions (the stateless era's are `StatelessEnvelope.supportedVersions`).
    static let supportedVersions: [String] = ["2025-03-26", "2025-06-18", "2025-11-25"]
    static let latestVersion = "2025-11-25"

    static let capabilities: JSONValue = .object([
        ("tools", .object([("listChanged", true)])),
        ("prompts", .object([("listChanged", true)])),
        ("resources", .object([("subscribe", true), ("listChanged", true)])),
        ("completions", .object([])),
    ])
    static let serverInfo: JSONValue = .object([("name", "warden"), ("version", .string(WardenVersion.current))])
    static let instructions = "Tools of every MCP server behind this Warden gateway, named <server>__<tool>."
}
