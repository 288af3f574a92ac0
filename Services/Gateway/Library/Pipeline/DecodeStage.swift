import HTTPTypes
import Hummingbird
import NIOCore
import WardenMCP
import WardenServiceKit

/// Stage 2: the body as one JSON-RPC message. Parsed once; every later stage (and the request that
/// is forwarded) uses this parse, never a second read of the body. An oversized body is refused
/// whole, never decided on a prefix.
struct DecodeStage: Sendable {
    let maximumBodyBytes: Int

    func run(_ request: Request) async throws(MCPFailure) -> JSONRPCMessage {
        guard let contentType = request.headers.value(.contentType), contentType.lowercased().hasPrefix("application/json") else {
            throw MCPFailure(.unsupportedMediaType, .invalidRequest("Content-Type must be application/json"))
        }
        if let version = request.headers.value(.mcpProtocolVersion), !GatewayMCPInfo.supportedVersions.contains(version),
            !StatelessEnvelope.supportedVersions.contains(version)
        {
            throw MCPFailure(.badRequest, StatelessEnvelope.unsupportedVersion(version))
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maximumBodyBytes)
        } catch {
            throw MCPFailure(.contentTooLarge, .invalidRequest("the body is larger than \(maximumBodyBytes) bytes"))
        }
        let value: JSONValue
        do {
            value = try JSONParser().parse(body.readableBytesView)
        } catch {
            throw MCPFailure(.badRequest, .parseError(error.description))
        }
        if case .array = value {
            throw MCPFailure(.badRequest, .invalidRequest("JSON-RPC batches are not supported; send one message per request"))
        }
        do {
            return try JSONRPCMessage.parse(value)
        } catch {
            throw MCPFailure(.badRequest, error, id: value["id"].flatMap(JSONRPCID.init))
        }
    }
}
