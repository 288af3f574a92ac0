import Foundation
import WardenContracts

/// An OAuth 2.1 authorization request (`/oauth/authorize`), as its parameters came, and what they
/// must be: the code flow, PKCE with S256, scopes Warden knows, and Warden's `/mcp` as the
/// resource (RFC 8707). The parameters travel on through the sign-in and consent forms unchanged.
package struct AuthorizationRequest: Sendable, Equatable {
    package static let parameterNames = [
        "response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope", "resource", "prompt",
    ]
    package var parameters: [String: String]

    package init(_ fields: [String: String]) {
        parameters = fields.filter { Self.parameterNames.contains($0.key) }
    }

    package var clientID: String? { parameters["client_id"].flatMap { $0.isEmpty ? nil : $0 } }

    /// The parameters after a sign-in: `prompt=login` was answered (asking again would never end).
    package var afterSignIn: [(String, String)] { carried.filter { !($0.0 == "prompt" && $0.1 == "login") } }

    /// The parameters to carry in a form or a URL.
    package var carried: [(String, String)] { Self.parameterNames.compactMap { name in parameters[name].map { (name, $0) } } }

    /// An error the client hears at its redirect URI (RFC 6749 §4.1.2.1).
    package struct Refusal: Error, Equatable {
        package var error: String
        package var description: String
    }

    /// What a valid request asks for.
    package struct Grant: Sendable, Equatable {
        package var scopes: [String]
        package var resource: String
        package var codeChallenge: String
    }

    /// Checks every parameter but the client and its redirect URI (checked first, by the caller:
    /// before those are known good, no error may be sent to the redirect URI).
    package func grant(audience: String) throws(Refusal) -> Grant {
        guard parameters["response_type"] == "code" else {
            throw Refusal(error: "unsupported_response_type", description: "response_type must be code (the authorization-code flow)")
        }
        guard let challenge = parameters["code_challenge"], !challenge.isEmpty else {
            throw Refusal(error: "invalid_request", description: "code_challenge is required: PKCE with S256")
        }
        guard parameters["code_challenge_method"] == "S256" else {
            throw Refusal(error: "invalid_request", description: "code_challenge_method must be S256 (plain is not accepted)")
        }
        guard challenge.utf8.count == 43, challenge.utf8.allSatisfy(Self.isBase64URL) else {
            throw Refusal(error: "invalid_request", description: "code_challenge must be a base64url SHA-256 digest (43 characters)")
        }
        let requested = (parameters["scope"] ?? "").split(separator: " ").map(String.init)
        var scopes: [String] = []
        for scope in requested.isEmpty ? ["mcp"] : requested where !scopes.contains(scope) {
            guard Self.supportedScopes.contains(scope) else {
                throw Refusal(error: "invalid_scope", description: "unknown scope '\(scope.prefix(64))': Warden offers mcp and offline_access")
            }
            scopes.append(scope)
        }
        if !scopes.contains("mcp") { scopes.insert("mcp", at: 0) }
        let resource = parameters["resource"] ?? audience
        guard Self.sameResource(resource, audience) else {
            throw Refusal(error: "invalid_target", description: "resource must be this gateway's MCP endpoint, \(audience)")
        }
        if let state = parameters["state"], state.utf8.count > 1024 {
            throw Refusal(error: "invalid_request", description: "state is at most 1024 bytes")
        }
        return Grant(scopes: scopes, resource: audience, codeChallenge: challenge)
    }

    package static let supportedScopes: Set<String> = ["mcp", "offline_access"]

    /// RFC 8707 resources compare as URIs; a trailing slash is the only difference allowed.
    static func sameResource(_ presented: String, _ audience: String) -> Bool {
        presented == audience || presented == audience + "/"
    }

    static func isBase64URL(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
    }

    /// Where the client hears the outcome: its redirect URI with the answer, `state` as given and
    /// `iss` (RFC 9207, so a client talking to several servers knows which one answered).
    package func redirect(_ redirectURI: String, issuer: String, _ answer: [(String, String)]) -> String {
        var parameters = answer
        if let state = self.parameters["state"] { parameters.append(("state", state)) }
        parameters.append(("iss", issuer))
        return RedirectURI.adding(parameters, to: redirectURI)
    }
}
