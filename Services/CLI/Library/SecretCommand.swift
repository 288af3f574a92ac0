import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden secret …`: an org's secrets in the vault. Values are write-only: `set` reads one from
/// standard input or a file (never from the command line, where it would land in shell history and
/// process lists); nothing shows a value again.
struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Store and manage an org's secrets in the vault (values are write-only).",
        subcommands: [Set.self, List.self, Show.self, Versions.self, Delete.self, Undelete.self, Destroy.self]
    )

    static let path = "/admin/v1/secrets"

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a new version of a secret, read from standard input (one trailing newline removed) or --from-file (exact bytes).")
        @OptionGroup var secret: SecretAddress
        @Option(help: "Read the value from this file instead of standard input.") var fromFile: String?
        @Option(name: .customLong("tag"), help: "A tag (repeat).") var tags: [String] = []
        @Option(help: "What the secret is for (an empty one clears it; default: kept).") var description: String?
        @Option(help: "When it expires (ISO 8601, for example 2027-01-31T00:00:00Z); reads fail after. Default: kept.") var expires: String?
        @Flag(help: "Remove the expiry.") var noExpiry = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let value: Data
            if let fromFile {
                guard let data = FileManager.default.contents(atPath: fromFile) else { throw ValidationError("cannot read \(fromFile)") }
                value = data
            } else {
                var data = FileHandle.standardInput.readDataToEndOfFile()
                if data.last == 0x0A { data.removeLast() }
                if data.last == 0x0D { data.removeLast() }
                value = data
            }
            guard !value.isEmpty else {
                throw ValidationError("the value is empty: pipe it in (printf %s \"$VALUE\" | warden secret set …) or use --from-file")
            }
            var fields: [String: JSONField] = ["value": .string(value.base64EncodedString())]
            if let description { fields["description"] = .string(description) }
            if !tags.isEmpty { fields["tags"] = .array(tags) }
            if noExpiry {
                guard expires == nil else { throw ValidationError("--expires and --no-expiry contradict each other") }
                fields["clearsExpiry"] = .bool(true)
            }
            if let expires {
                guard ISO8601DateFormatter().date(from: expires) != nil else {
                    throw ValidationError("--expires must be ISO 8601, like 2027-01-31T00:00:00Z")
                }
                fields["expiresAt"] = .string(expires)
            }
            let body = try await secret.post("", fields)
            let metadata = try EnvelopeCoding.decoder().decode(SecretMetadata.self, from: body)
            print(json ? String(decoding: body, as: UTF8.self) : "stored \(secret.org)/\(metadata.path) version \(metadata.currentVersion)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an org's secrets (paths and metadata, never values).")
        @OptionGroup var gateway: GatewayOptions
        @OptionGroup var owner: SecretOwner
        @Option(help: "Only paths starting with this.") var prefix: String?
        @Flag(help: "Include deleted secrets.") var deleted = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let org = owner.org
            var query = "?org=\(SecretCommand.escape(org))"
            if let prefix { query += "&prefix=\(SecretCommand.escape(prefix))" }
            if deleted { query += "&deleted=true" }
            let body = try await AdminClient(gateway, path: SecretCommand.path).send(.GET, query)
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let list = try EnvelopeCoding.decoder().decode(SecretList.self, from: body)
            guard !list.secrets.isEmpty else { return print("no secrets in org \(org)\(prefix.map { " under \($0)" } ?? "")") }
            var rows = [["PATH", "VERSION", "UPDATED", "BY", "EXPIRES", "STATE"]]
            for secret in list.secrets {
                rows.append([
                    secret.path, "\(secret.currentVersion)", SecretCommand.date(secret.updatedAt), secret.updatedBy,
                    secret.expiresAt.map(SecretCommand.date) ?? "-", secret.deletedAt == nil ? "live" : "deleted",
                ])
            }
            print(SecretCommand.table(rows))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a secret's metadata (never its value).")
        @OptionGroup var secret: SecretAddress
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await secret.get("/show")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let secret = try EnvelopeCoding.decoder().decode(SecretMetadata.self, from: body)
            print(
                """
                path         \(secret.org)/\(secret.path)
                version      \(secret.currentVersion)
                description  \(secret.description ?? "-")
                tags         \(secret.tags.isEmpty ? "-" : secret.tags.joined(separator: ", "))
                created      \(SecretCommand.date(secret.createdAt)) by \(secret.createdBy)
                updated      \(SecretCommand.date(secret.updatedAt)) by \(secret.updatedBy)
                expires      \(secret.expiresAt.map(SecretCommand.date) ?? "never")
                last used    \(secret.lastUsedAt.map(SecretCommand.date) ?? "never")
                state        \(secret.deletedAt.map { "deleted \(SecretCommand.date($0))" } ?? "live")
                """)
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a secret's versions.")
        @OptionGroup var secret: SecretAddress
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await secret.get("/versions")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let list = try EnvelopeCoding.decoder().decode(SecretVersionList.self, from: body)
            var rows = [["VERSION", "CREATED", "BY", "STATE"]]
            for version in list.versions {
                rows.append([
                    "\(version.version)", SecretCommand.date(version.createdAt), version.createdBy, version.destroyed ? "destroyed" : "stored",
                ])
            }
            print(SecretCommand.table(rows))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a secret (reads fail; undelete brings it back).")
        @OptionGroup var secret: SecretAddress

        func run() async throws {
            _ = try await secret.post("/delete")
            print(
                "deleted \(secret.org)/\(secret.path) (undo with: warden secret undelete \(secret.org == SecretReference.sharedOrg ? "--shared" : "--org \(secret.org)") \(secret.path))"
            )
        }
    }

    struct Undelete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bring a deleted secret back.")
        @OptionGroup var secret: SecretAddress

        func run() async throws {
            _ = try await secret.post("/undelete")
            print("undeleted \(secret.org)/\(secret.path)")
        }
    }

    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Erase versions of a secret for good (their ciphertext is gone).")
        @OptionGroup var secret: SecretAddress
        @Option(name: .customLong("version"), help: "A version to destroy (repeat; default: every version).") var versions: [Int] = []
        @Flag(help: "Confirm: this cannot be undone.") var yes = false

        func run() async throws {
            guard yes else { throw ValidationError("destroying \(secret.org)/\(secret.path) cannot be undone: add --yes") }
            _ = try await secret.post("/destroy", versions.isEmpty ? [:] : ["versions": .ints(versions)])
            print(
                "destroyed \(versions.isEmpty ? "every version" : "version(s) \(versions.map(String.init).joined(separator: ", "))") of \(secret.org)/\(secret.path)"
            )
        }
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? text
    }

    static func date(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(
                in: .whitespaces)
        }.joined(separator: "\n")
    }
}

/// Whose secrets: an org's (`--org acme`), or the shared secrets that shared servers use
/// (`--shared`, platform admins only).
struct SecretOwner: ParsableArguments {
    @Option(name: .customLong("org"), help: "The org (tenant).") var named: String?
    @Flag(help: "The shared secrets, which servers of no org refer to (platform admins only).") var shared = false

    var org: String { shared ? SecretReference.sharedOrg : named ?? "" }

    func validate() throws {
        guard (named != nil) != shared else { throw ValidationError("name the secrets' owner: --org ORG or --shared") }
    }
}

/// The secret a command acts on: the gateway, the org and the path.
struct SecretAddress: ParsableArguments {
    @OptionGroup var gateway: GatewayOptions
    @OptionGroup var owner: SecretOwner
    @Option(help: "A user's own secret (what per-user servers refer to): stored as users/<user>/<path> in the org.") var user: String?
    @Argument(help: "The secret's path, for example github/token.") var secretPath: String

    var org: String { owner.org }
    /// Where it is stored: a user's own secrets sit under `users/<user>/`.
    var path: String { user.map { "users/\($0)/\(secretPath)" } ?? secretPath }

    func validate() throws {
        if user != nil, owner.shared { throw ValidationError("--user names a user of an org: use it with --org") }
    }

    func get(_ route: String) async throws -> Data {
        try await AdminClient(gateway, path: SecretCommand.path).send(
            .GET, "\(route)?org=\(SecretCommand.escape(org))&path=\(SecretCommand.escape(path))")
    }

    func post(_ route: String, _ fields: [String: JSONField] = [:]) async throws -> Data {
        let body = fields.merging(["org": .string(org), "path": .string(path)]) { $1 }
        return try await AdminClient(gateway, path: SecretCommand.path).send(.POST, route, body: .object(body))
    }
}
