/// How to launch one stdio MCP server.
package struct StdioLaunchSpec: Sendable, Codable, Equatable {
    /// An absolute path, or a name looked up on `PATH`.
    package var command: String
    package var arguments: [String]
    /// Added to a minimal base environment (`PATH`, `HOME`, `LANG`, `TZ`). The gateway's own
    /// environment (database password, tokens) is never inherited.
    package var environment: [String: String]
    package var workingDirectory: String?
    /// A line (one JSON-RPC message) longer than this is a protocol violation: the server is stopped.
    package var maximumMessageBytes: Int

    package init(
        command: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        workingDirectory: String? = nil,
        maximumMessageBytes: Int = 4 << 20
    ) {
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.maximumMessageBytes = maximumMessageBytes
    }

    /// Variables copied from the gateway's environment into every server's.
    static let inheritedVariables = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"]
}
