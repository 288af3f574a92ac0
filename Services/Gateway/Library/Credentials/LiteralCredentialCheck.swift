import Foundation

/// Refuses literal text in a server's settings that looks like a credential: such values belong in
/// the vault (`warden secret set`), referred to as `secret://…`, so that they are injected at
/// execution time, scrubbed from responses and never stored in the gateway's schema.
///
/// A literal is refused when it is 8 characters or longer and either its name says it is a
/// credential (a header such as `Authorization`, `Cookie` or `X-API-Key`; a variable whose name
/// contains KEY, TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL or AUTH) or its text carries a known
/// credential shape (`sk-`, `ghp_`, `github_pat_`, `glpat-`, `xoxb-`, `AKIA`, `AIza`, a JWT, a
/// private key).
package enum LiteralCredentialCheck {
    package enum Setting: String, Sendable {
        case environment = "env"
        case header = "headers"
        case query = "query"
    }

    static let credentialHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token", "x-access-token", "private-token",
    ]
    static let credentialWords = ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH"]
    static let credentialShapes = [
        "sk-", "sk_live_", "rk_live_", "ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-", "AKIA", "ASIA",
        "AIza", "ya29.", "eyJ", "-----BEGIN",
    ]

    /// Why `template` may not be stored as `name` in `setting` of server `server`, or nil.
    package static func problem(server: String, setting: Setting, name: String, template: CredentialTemplate) -> String? {
        let literal = template.literalText.trimmingCharacters(in: .whitespaces)
        // "Bearer " before a reference is fine; a literal credential is at least 8 characters.
        let words: [Substring] = literal.split(whereSeparator: { " ,;=".contains($0) }).filter { $0.count >= 8 }
        guard !words.isEmpty else { return nil }
        let namedAsCredential =
            switch setting {
            case .header: credentialHeaders.contains(name.lowercased()) || credentialWords.contains { name.uppercased().contains($0) }
            case .environment, .query: credentialWords.contains { name.uppercased().contains($0) }
            }
        let shaped = words.contains { word in credentialShapes.contains { shape in word.hasPrefix(shape) } }
        guard namedAsCredential || shaped else { return nil }
        return
            "server '\(server)': \(setting.rawValue) '\(name.prefix(64))' holds what looks like a credential in plain text; store it in the vault "
            + "(warden secret set \(Self.suggestedPath(server: server, setting: setting, name: name))) and refer to it as "
            + "secret://\(Self.suggestedPath(server: server, setting: setting, name: name))"
    }

    /// Where the migration and the error message put a server's value: `servers/<id>/<env|headers|query>/<name>`.
    package static func suggestedPath(server: String, setting: Setting, name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".utf8)
        let segment = String(decoding: name.utf8.map { allowed.contains($0) ? $0 : UInt8(ascii: "_") }.prefix(64), as: UTF8.self)
        return "servers/\(server)/\(setting.rawValue)/\(segment.isEmpty || segment == "." || segment == ".." ? "_" : segment)"
    }
}
