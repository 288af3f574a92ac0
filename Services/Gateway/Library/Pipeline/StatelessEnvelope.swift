import Foundation
import WardenMCP

/// The per-request envelope of the stateless 2026-07-28 era: no `initialize`, no session; every
/// request names its protocol version and the client's capabilities in `params._meta`, and the
/// HTTP headers `MCP-Protocol-Version`, `Mcp-Method` and (for named calls) `Mcp-Name` repeat what the
/// body says so that intermediaries can route without parsing it. A value type without I/O.
package struct StatelessEnvelope: Sendable, Equatable {
    package static let protocolVersionKey = "io.modelcontextprotocol/protocolVersion"
    package static let clientCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities"
    package static let clientInfoKey = "io.modelcontextprotocol/clientInfo"
    package static let serverInfoKey = "io.modelcontextprotocol/serverInfo"
    /// Versions of the stateless era this gateway speaks.
    package static let supportedVersions: [String] = ["2026-07-28"]
    /// JSON-RPC code for a version the server does not speak; `data` names the supported ones.
    package static let unsupportedVersionCode = JSONRPCError.Code.unsupportedProtocolVersion
    /// The body field each named method repeats in `Mcp-Name`.
    package static let nameFields: [String: String] = ["tools/call": "name", "prompts/get": "name", "resources/read": "uri"]

    package var protocolVersion: String
    package var clientName: String?

    /// The routing headers of one request (nil when absent).
    package struct Headers: Sendable {
        package var protocolVersion: String?
        package var method: String?
        package var name: String?

        package init(protocolVersion: String?, method: String?, name: String?) {
            self.protocolVersion = protocolVersion
            self.method = method
            self.name = name
        }
    }

    /// True when a request belongs to the stateless era: its header or its `_meta` names a version of it.
    /// Anything else is a handshake-era request (or a malformed one, answered as such).
    package static func isStateless(params: JSONValue?, headers: Headers) -> Bool {
        if let version = headers.protocolVersion, supportedVersions.contains(version) { return true }
        return params?["_meta"]?[protocolVersionKey] != nil
    }

    /// Checks a stateless request, in the order the specification gives: the envelope is present,
    /// the headers agree with the body, the version is one we speak.
    package static func validate(method: String, params: JSONValue?, headers: Headers) -> Result<StatelessEnvelope, JSONRPCError> {
        guard let meta = params?["_meta"], case .object = meta else {
            return .failure(.invalidParams("params._meta must be an object carrying \"\(protocolVersionKey)\" and \"\(clientCapabilitiesKey)\""))
        }
        let missing = [protocolVersionKey, clientCapabilitiesKey].filter { meta[$0] == nil }
        guard missing.isEmpty else {
            return .failure(.invalidParams("params._meta is missing \(missing.joined(separator: ", "))"))
        }
        let version = meta[protocolVersionKey]
        guard let header = headers.protocolVersion, version == .string(header) else {
            return .failure(.headerMismatch("the MCP-Protocol-Version header does not match params._meta"))
        }
        guard headers.method == method else {
            return .failure(.headerMismatch("the Mcp-Method header does not match the body's method"))
        }
        if let field = nameFields[method], case .string(let value) = params?[field] ?? .null {
            guard headers.name.flatMap(decodeHeaderValue) == value else {
                return .failure(.headerMismatch("the Mcp-Name header does not match the body's \"\(field)\""))
            }
        }
        guard supportedVersions.contains(header) else {
            return .failure(unsupportedVersion(header))
        }
        return .success(StatelessEnvelope(protocolVersion: header, clientName: meta[clientInfoKey]?["name"]?.stringValue))
    }

    package static func unsupportedVersion(_ requested: String) -> JSONRPCError {
        let supported = supportedVersions + GatewayMCPInfo.supportedVersions
        return JSONRPCError(
            code: unsupportedVersionCode,
            message: "Unsupported protocol version \(requested); supported: \(supported.joined(separator: ", "))",
            data: .object([("supported", .array(supported.map { .string($0) })), ("requested", .string(requested))])
        )
    }

    /// Header values that would not survive HTTP travel are sent as `=?base64?<payload>?=`.
    /// A malformed sentinel decodes to nil, so it never matches a body value by accident.
    package static func decodeHeaderValue(_ value: String) -> String? {
        guard value.hasPrefix("=?base64?"), value.hasSuffix("?="), value.count >= 11 else { return value }
        let payload = String(value.dropFirst(9).dropLast(2))
        guard let data = Data(base64Encoded: payload), data.base64EncodedString() == payload else { return nil }
        return String(validating: Array(data), as: UTF8.self)
    }

    /// Results the stateless era lets clients cache; they must carry `ttlMs` and `cacheScope`.
    package static let cacheableMethods: Set<String> = [
        "server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read",
    ]

    /// A result as the stateless era requires it: `resultType` present, caching directives on
    /// cacheable results (never cached, private: what a caller sees depends on who it is), the
    /// server named in `_meta`.
    package static func stamp(_ result: JSONValue, method: String, serverInfo: JSONValue) -> JSONValue {
        guard case .object = result else { return result }
        var stamped = result
        if stamped["resultType"] == nil { stamped = stamped.setting("resultType", to: "complete") }
        if cacheableMethods.contains(method) {
            if stamped["ttlMs"] == nil { stamped = stamped.setting("ttlMs", to: 0) }
            if stamped["cacheScope"] == nil { stamped = stamped.setting("cacheScope", to: "private") }
        }
        let meta = stamped["_meta"] ?? .object([])
        if case .object = meta, meta[serverInfoKey] == nil {
            stamped = stamped.setting("_meta", to: meta.setting(serverInfoKey, to: serverInfo))
        }
        return stamped
    }

    /// The HTTP status for an error answered on the stateless path (the specification's table).
    package static func httpStatus(for code: Int) -> Int {
        switch code {
        case JSONRPCError.Code.parseError, JSONRPCError.Code.invalidRequest, JSONRPCError.Code.invalidParams, JSONRPCError.Code.headerMismatch,
            JSONRPCError.Code.missingHeader, JSONRPCError.Code.unsupportedProtocolVersion:
            400
        case JSONRPCError.Code.methodNotFound: 404
        default: 200
        }
    }
}
