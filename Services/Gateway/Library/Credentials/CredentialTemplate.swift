import Foundation
import WardenContracts

/// A server setting's value (an `env` or `headers` value) as the registry keeps it: literal text
/// and references to vault secrets, resolved only when the value is used.
///
/// - `secret://github/token`: the latest version of the secret, the whole value.
/// - `secret://github/token#3`: version 3.
/// - `Bearer ${secret://github/token}`: references mixed with literal text.
/// - `Bearer ${oauth://github}`: the current access token of OAuth connection `github` (headers
///   only: an access token expires, and a process's environment is fixed when it starts).
package struct CredentialTemplate: Sendable, Equatable {
    package enum Part: Sendable, Equatable {
        case literal(String)
        case secret(SecretLocator)
    }

    package var parts: [Part]

    /// A secret of the server's org, by path and optional version; or an OAuth connection of the
    /// org, by name (`path`), whose access token is the value.
    package struct SecretLocator: Sendable, Hashable, CustomStringConvertible {
        package enum Kind: Sendable, Hashable {
            case secret
            case oauth
        }

        package var path: String
        package var version: Int?
        package var kind: Kind = .secret

        package init(path: String, version: Int?, kind: Kind = .secret) {
            self.path = path
            self.version = version
            self.kind = kind
        }

        package var description: String {
            kind == .oauth ? "oauth://\(path)" : "secret://\(path)\(version.map { "#\($0)" } ?? "")"
        }
    }

    package struct ParseError: Error, Equatable, CustomStringConvertible {
        package var description: String
    }

    static let schemes: [(String, SecretLocator.Kind)] = [("secret://", .secret), ("oauth://", .oauth)]

    package init(parsing value: String) throws(ParseError) {
        for (scheme, kind) in Self.schemes where value.hasPrefix(scheme) && !value.contains("${") {
            parts = [.secret(try Self.locator(value.dropFirst(scheme.count), kind: kind))]
            return
        }
        var parts: [Part] = []
        var rest = Substring(value)
        while let start = rest.range(of: "${") {
            guard let (scheme, kind) = Self.schemes.first(where: { rest[start.upperBound...].hasPrefix($0.0) }) else {
                // Not a reference: literal text up to and including the '$'.
                let next = rest.index(after: start.lowerBound)
                parts.append(.literal(String(rest[..<next])))
                rest = rest[next...]
                continue
            }
            if start.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<start.lowerBound]))) }
            let body = rest.index(start.upperBound, offsetBy: scheme.count)
            guard let end = rest[body...].firstIndex(of: "}") else {
                throw ParseError(description: "a '${\(scheme)' reference is not closed with '}'")
            }
            parts.append(.secret(try Self.locator(rest[body..<end], kind: kind)))
            rest = rest[rest.index(after: end)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = Self.merged(parts)
    }

    /// Adjacent literal parts as one.
    private static func merged(_ parts: [Part]) -> [Part] {
        var result: [Part] = []
        for part in parts {
            if case .literal(let text) = part, case .literal(let previous)? = result.last {
                result[result.count - 1] = .literal(previous + text)
            } else {
                result.append(part)
            }
        }
        return result
    }

    private static func locator(_ text: Substring, kind: SecretLocator.Kind) throws(ParseError) -> SecretLocator {
        if kind == .oauth {
            guard OAuthPaths.isValidName(text) else {
                throw ParseError(
                    description: "'oauth://\(text.prefix(64))' does not name an OAuth connection (1 to 64 letters, digits, '.', '_' or '-')")
            }
            return SecretLocator(path: String(text), version: nil, kind: .oauth)
        }
        var path = text
        var version: Int?
        if let hash = text.firstIndex(of: "#") {
            path = text[..<hash]
            guard let number = Int(text[text.index(after: hash)...]), number > 0 else {
                throw ParseError(description: "secret://\(path.prefix(64)): a version after '#' is a positive number")
            }
            version = number
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/".utf8)
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, path.utf8.count <= 256, path.utf8.allSatisfy(allowed.contains),
            segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
        else {
            throw ParseError(
                description: "'secret://\(path.prefix(64))' is not a secret path (segments of letters, digits, '.', '_' and '-' separated by '/')")
        }
        guard !OAuthPaths.isManaged(String(path)) else {
            // Grants and clients hold refresh tokens and client secrets: never injected as they are.
            throw ParseError(description: "'secret://\(path.prefix(64))' is an OAuth connection's record: refer to its access token as oauth://NAME")
        }
        return SecretLocator(path: String(path), version: version)
    }

    /// The secrets this value refers to.
    package var references: [SecretLocator] {
        parts.compactMap { part in
            if case .secret(let locator) = part { return locator }
            return nil
        }
    }

    /// The literal text of the value (everything that is not a reference).
    package var literalText: String {
        parts.map { part in
            if case .literal(let text) = part { return text }
            return ""
        }.joined()
    }

    /// The value with each reference replaced by what `value(of:)` gives.
    package func render(_ value: (SecretLocator) throws -> String) rethrows -> String {
        try parts.map { part in
            switch part {
            case .literal(let text): text
            case .secret(let locator): try value(locator)
            }
        }.joined()
    }
}

extension CredentialTemplate {
    /// A value taken as literal text, whatever it holds.
    package init(literal: String) {
        self.parts = literal.isEmpty ? [] : [.literal(literal)]
    }
}
