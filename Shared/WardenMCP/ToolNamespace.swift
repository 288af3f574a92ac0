/// How the gateway names a downstream server's tools, prompts and resource templates in its merged
/// catalogue: `<server id>__<name>`.
///
/// Many LLM APIs accept only `[A-Za-z0-9_-]`, at most 64 characters, in tool names; `::`, `/` and `.`
/// break some of them. A double underscore survives all of them, and server ids may not contain one,
/// so the first `__` always ends the server id.
public enum ToolNamespace {
    public static let separator = "__"
    public static let maximumLength = 64

    /// Server ids: 1–32 of `[a-z0-9-]`, starting with a letter or digit, no `__` (so names split back unambiguously).
    public static func isValidServerID(_ id: String) -> Bool {
        guard (1...32).contains(id.utf8.count), let first = id.utf8.first, isLowerAlphanumeric(first) else { return false }
        return id.utf8.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// The public name, or nil when it would break LLM tool-name rules (then the tool is left out, with a logged reason).
    public static func qualify(server: String, name: String) -> String? {
        let qualified = server + separator + name
        guard qualified.utf8.count <= maximumLength,
            qualified.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { return nil }
        return qualified
    }

    /// Splits a public name back into server id and the server's own name.
    public static func split(_ qualified: String) -> (server: String, name: String)? {
        let bytes = Array(qualified.utf8)
        guard let cut = bytes.indices.dropLast().first(where: { bytes[$0] == UInt8(ascii: "_") && bytes[$0 + 1] == UInt8(ascii: "_") }) else {
            return nil
        }
        let server = String(decoding: bytes[..<cut], as: UTF8.self)
        let name = String(decoding: bytes[(cut + 2)...], as: UTF8.self)
        guard isValidServerID(server), !name.isEmpty else { return nil }
        return (server, name)
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
}

/// How the gateway names a downstream server's resources and resource templates: `<server id>+<uri>`,
/// so `file:///notes.txt` of server `docs` becomes `docs+file:///notes.txt`. The result is still a
/// URI (a scheme may hold `+`), templates keep working once expanded by the client, and reads split
/// back at the first `+` (server ids never contain one).
public enum ResourceNamespace {
    public static let separator: Character = "+"

    public static func qualify(server: String, uri: String) -> String { server + String(separator) + uri }

    /// The server id and its own URI, or nil when `uri` carries no valid server prefix.
    public static func split(_ qualified: String) -> (server: String, uri: String)? {
        guard let cut = qualified.firstIndex(of: separator) else { return nil }
        let server = String(qualified[..<cut])
        let uri = String(qualified[qualified.index(after: cut)...])
        guard ToolNamespace.isValidServerID(server), !uri.isEmpty else { return nil }
        return (server, uri)
    }
}
