import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import WardenMCP

/// `warden connect`: a stdio MCP server that forwards everything to a Warden gateway over Streamable
/// HTTP, for clients that can only launch a local process (Claude Desktop, some IDEs).
///
/// Reads one JSON-RPC message per line on stdin, POSTs it to `<url>/mcp`, and writes the answers to
/// stdout, one per line. The session id and protocol version from `initialize` are sent on every
/// later request; the agent's credential comes from `WARDEN_AGENT_TOKEN` (never from arguments, so
/// it does not show in process listings). End of input ends the session (DELETE).
struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Bridge a stdio MCP client to a Warden gateway (credential from $WARDEN_AGENT_TOKEN)."
    )

    @OptionGroup var gateway: GatewayOptions

    @Option(help: "Longest accepted line on stdin, in bytes.")
    var maximumMessageBytes = 4 << 20

    func run() async throws {
        let bridge = StdioBridge(
            endpoint: gateway.resolvedURL + "/mcp",
            token: ProcessInfo.processInfo.environment["WARDEN_AGENT_TOKEN"],
            timeout: .seconds(Int64(max(gateway.timeout, 300)))
        )
        let lines = StandardInputLines.start(maximumBytes: maximumMessageBytes)
        await withTaskGroup(of: Void.self) { group in
            for await line in lines {
                group.addTask { await bridge.forward(line) }
            }
            await group.waitForAll()
        }
        await bridge.close()
    }
}

/// The bridge's state: the session the gateway gave us, and one writer for stdout.
actor StdioBridge {
    let endpoint: String
    let token: String?
    let timeout: TimeAmount
    private var sessionID: String?
    private var protocolVersion: String?

    init(endpoint: String, token: String?, timeout: TimeAmount) {
        self.endpoint = endpoint
        self.token = token
        self.timeout = timeout
    }

    /// Forwards one line and writes whatever comes back. Never throws: failures become JSON-RPC
    /// errors for the request's id, so the client is never left waiting.
    func forward(_ line: StandardInputLines.Line) async {
        guard case .line(let bytes) = line else {
            write(JSONRPCMessage.error(id: nil, .invalidRequest("message longer than the limit")).json.serialized())
            return
        }
        let parsed = try? JSONParser().parse(bytes)
        let id = parsed.flatMap { $0["id"] }.flatMap { value -> JSONRPCID? in
            switch value {
            case .string(let text): .string(text)
            case .number(let literal): .number(literal)
            default: nil
            }
        }
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if let parsed, let headers = Self.statelessHeaders(parsed) {
            // A 2026-07-28 request is self-contained: its routing headers repeat its body.
            for (name, value) in headers { request.headers.add(name: name, value: value) }
        } else {
            if let sessionID { request.headers.add(name: "Mcp-Session-Id", value: sessionID) }
            if let protocolVersion { request.headers.add(name: "MCP-Protocol-Version", value: protocolVersion) }
        }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: bytes))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 << 20)
            if let session = response.headers.first(name: "Mcp-Session-Id") { sessionID = session }
            if parsed?["method"] == .string("initialize"),
                let version = try? JSONParser().parse(body.readableBytesView)["result"]?["protocolVersion"]?.stringValue
            {
                protocolVersion = version
            }
            if response.status == .accepted || body.readableBytes == 0 { return }
            let contentType = response.headers.first(name: "Content-Type") ?? ""
            if contentType.hasPrefix("text/event-stream") {
                for data in ServerSentEvents.dataFields(String(buffer: body)) { write(Array(data.utf8)) }
            } else if (try? JSONParser().parse(body.readableBytesView)) != nil {
                write(Array(body.readableBytesView))
            } else if let id {
                write(
                    JSONRPCMessage.error(
                        id: id, JSONRPCError(code: JSONRPCError.Code.internalError, message: "gateway answered HTTP \(response.status.code)")
                    ).json.serialized())
            }
        } catch {
            if let id {
                write(
                    JSONRPCMessage.error(
                        id: id,
                        JSONRPCError(code: JSONRPCError.Code.internalError, message: "cannot reach the Warden gateway at \(endpoint): \(error)")
                    ).json.serialized())
            }
        }
    }

    /// The `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers of a stateless-era message
    /// (one whose `_meta` names its protocol version), or nil for a handshake-era message.
    static func statelessHeaders(_ message: JSONValue) -> [(String, String)]? {
        guard case .string(let version) = message["params"]?["_meta"]?["io.modelcontextprotocol/protocolVersion"] ?? .null,
            case .string(let method) = message["method"] ?? .null
        else { return nil }
        var headers = [("MCP-Protocol-Version", version), ("Mcp-Method", method)]
        let field = ["tools/call": "name", "prompts/get": "name", "resources/read": "uri"][method]
        if let field, case .string(let name) = message["params"]?[field] ?? .null {
            let plain =
                name.utf8.allSatisfy { (0x20...0x7E).contains($0) } && name == name.trimmingCharacters(in: .whitespaces)
                && !name.hasPrefix("=?base64?")
            headers.append(("Mcp-Name", plain ? name : "=?base64?\(Data(name.utf8).base64EncodedString())?="))
        }
        return headers
    }

    /// Ends the session on the gateway.
    func close() async {
        guard let sessionID else { return }
        var request = HTTPClientRequest(url: endpoint)
        request.method = .DELETE
        request.headers.add(name: "Mcp-Session-Id", value: sessionID)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        _ = try? await HTTPClient.shared.execute(request, timeout: .seconds(5))
    }

    private func write(_ bytes: [UInt8]) {
        var line = bytes
        line.append(0x0A)
        FileHandle.standardOutput.write(Data(line))
    }
}

/// The `data:` payloads of a Server-Sent Events body, one per event.
enum ServerSentEvents {
    static func dataFields(_ text: String) -> [String] {
        var parser = ServerSentEventParser(maximumEventBytes: .max)
        let events = (try? parser.feed(Array(text.utf8) + [0x0A, 0x0A])) ?? []
        return events.map(\.data)
    }
}

/// Lines of standard input, read on a dedicated thread (reading blocks) with a length limit.
enum StandardInputLines {
    enum Line: Sendable {
        case line([UInt8])
        case tooLong
    }

    static func start(maximumBytes: Int) -> AsyncStream<Line> {
        let (stream, continuation) = AsyncStream.makeStream(of: Line.self)
        let thread = Thread {
            var buffer: [UInt8] = []
            var discarding = false
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(0, &chunk, chunk.count)
                if count <= 0 { break }
                for byte in chunk[0..<count] {
                    if byte == 0x0A {
                        if !discarding, !buffer.isEmpty { continuation.yield(.line(buffer)) }
                        buffer.removeAll(keepingCapacity: true)
                        discarding = false
                    } else if !discarding {
                        buffer.append(byte)
                        if buffer.count > maximumBytes {
                            continuation.yield(.tooLong)
                            buffer.removeAll()
                            discarding = true
                        }
                    }
                }
            }
            if !buffer.isEmpty, !discarding { continuation.yield(.line(buffer)) }
            continuation.finish()
        }
        thread.start()
        return stream
    }
}
