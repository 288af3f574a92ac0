import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenServiceKit

/// The vault's secrets and keys through the admin API. Values go in and never come out: no route
/// returns one, admins included. An org admin manages its own org's secrets and org key; the root
/// key, the status of every org and shredding an org need the platform credential.
///
/// - `POST /admin/v1/secrets` `{org, path, value (base64), description?, tags?, expiresAt?}`: a new version
/// - `GET /admin/v1/secrets?org=&prefix=&deleted=true`, `GET …/secrets/show?org=&path=`, `GET …/secrets/versions?org=&path=`
/// - `POST /admin/v1/secrets/delete|undelete` `{org, path}`, `POST …/secrets/destroy` `{org, path, versions?}`
/// - `GET /admin/v1/vault/status`, `POST /admin/v1/vault/rotate-root-key|rotate-org-key|reencrypt|shred-org`
package struct SecretAdminRoutes: Sendable {
    package static let path = "/admin/v1/secrets"
    package static let vaultPath = "/admin/v1/vault"
    /// How long key work may take (rotations rewrap in batches while the mesh serves).
    static let keyWork = Duration.seconds(3600)
    let client: ServiceClient
    let access: AdminAccess
    let logger: Logger

    package init(client: ServiceClient, access: AdminAccess, logger: Logger) {
        self.client = client
        self.access = access
        self.logger = logger
    }

    struct WriteBody: Decodable {
        var org: String
        var path: String
        var value: String
        var description: String?
        var tags: [String]?
        var expiresAt: Date?
        var clearsExpiry: Bool?
    }

    struct ChangeBody: Decodable {
        var org: String
        var path: String?
        var versions: [Int]?
        var dryRun: Bool?
        var confirm: String?
    }

    struct RotationBody: Decodable {
        var org: String?
        var dryRun: Bool?
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post(RouterPath(Self.path)) { request, _ -> Response in
            // A value is at most 64 KiB; base64 and the other fields stay well under this.
            guard let body: WriteBody = await AdminAccess.decode(request, limit: 128 << 10) else {
                return AdminProblem(.invalid, "the body must be JSON with org, path and value (base64), and optional description, tags, expiresAt")
                    .response
            }
            return await access.answer(request, org: body.org) { actor in
                try await client.call(
                    SecretEndpoints.write,
                    SecretWrite(
                        org: body.org, path: body.path, value: body.value, description: body.description, tags: body.tags,
                        expiresAt: body.expiresAt, clearsExpiry: body.clearsExpiry ?? false, actor: actor))
            }
        }
        router.get(RouterPath(Self.path)) { request, _ -> Response in
            guard let org = request.uri.queryParameters["org"].map(String.init) else { return Self.missing("org") }
            let listing = SecretListRequest(
                org: org, prefix: request.uri.queryParameters["prefix"].map(String.init),
                includeDeleted: request.uri.queryParameters["deleted"] == "true")
            return await access.answer(request, org: org) { _ in try await client.call(SecretEndpoints.list, listing) }
        }
        router.get(RouterPath(Self.path + "/show")) { request, _ -> Response in
            guard let reference = Self.reference(request) else { return Self.missing("org and path") }
            return await access.answer(request, org: reference.org) { _ in try await client.call(SecretEndpoints.show, reference) }
        }
        router.get(RouterPath(Self.path + "/versions")) { request, _ -> Response in
            guard let reference = Self.reference(request) else { return Self.missing("org and path") }
            return await access.answer(request, org: reference.org) { _ in try await client.call(SecretEndpoints.versions, reference) }
        }
        for verb in ["delete", "undelete", "destroy"] {
            router.post(RouterPath(Self.path + "/" + verb)) { request, _ -> Response in
                guard let body: ChangeBody = await AdminAccess.decode(request), let path = body.path else {
                    return AdminProblem(.invalid, "the body must be JSON with org and path").response
                }
                return await access.answer(request, org: body.org) { actor in
                    switch verb {
                    case "delete": try await client.call(SecretEndpoints.delete, SecretChange(org: body.org, path: path, actor: actor))
                    case "undelete": try await client.call(SecretEndpoints.undelete, SecretChange(org: body.org, path: path, actor: actor))
                    default:
                        try await client.call(
                            SecretEndpoints.destroy, SecretDestruction(org: body.org, path: path, versions: body.versions, actor: actor))
                    }
                }
            }
        }
        router.get(RouterPath(Self.vaultPath + "/status")) { request, _ -> Response in
            await access.answer(request, org: nil) { _ in try await client.call(VaultKeyEndpoints.status, EmptyBody()) }
        }
        router.post(RouterPath(Self.vaultPath + "/rotate-root-key")) { request, _ -> Response in
            // An unreadable body is refused: it must not turn a dry run into a rotation.
            guard let body: RotationBody = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON: {\"dryRun\": true or false}").response
            }
            return await access.answer(request, org: nil) { actor in
                let report = try await client.call(
                    VaultKeyEndpoints.rotateRootKey, KeyRotationRequest(dryRun: body.dryRun ?? false), timeout: Self.keyWork)
                logger.notice("root key rotation", metadata: ["actor": "\(actor)", "dry_run": "\(report.dryRun)", "org_keys": "\(report.orgKeys)"])
                return report
            }
        }
        router.post(RouterPath(Self.vaultPath + "/rotate-org-key")) { request, _ -> Response in
            guard let body: RotationBody = await AdminAccess.decode(request), let org = body.org else { return Self.missing("org") }
            return await access.answer(request, org: org) { actor in
                let report = try await client.call(
                    VaultKeyEndpoints.rotateOrgKey, KeyRotationRequest(org: org, dryRun: body.dryRun ?? false), timeout: Self.keyWork)
                logger.notice(
                    "org key rotation",
                    metadata: ["actor": "\(actor)", "org": "\(org)", "dry_run": "\(report.dryRun)", "data_keys": "\(report.dataKeys)"])
                return report
            }
        }
        router.post(RouterPath(Self.vaultPath + "/reencrypt")) { request, _ -> Response in
            guard let body: ChangeBody = await AdminAccess.decode(request), let path = body.path else { return Self.missing("org and path") }
            return await access.answer(request, org: body.org) { _ in
                try await client.call(
                    VaultKeyEndpoints.reencrypt, SecretReencryption(org: body.org, path: path, dryRun: body.dryRun ?? false), timeout: Self.keyWork)
            }
        }
        router.post(RouterPath(Self.vaultPath + "/shred-org")) { request, _ -> Response in
            guard let body: ChangeBody = await AdminAccess.decode(request) else { return Self.missing("org and its confirmation") }
            return await access.answer(request, org: nil) { actor in
                let report = try await client.call(
                    VaultKeyEndpoints.shredOrg, OrgShredding(org: body.org, confirm: body.confirm ?? ""), timeout: Self.keyWork)
                logger.notice(
                    "org keys destroyed", metadata: ["actor": "\(actor)", "org": "\(body.org)", "secret_versions": "\(report.secretVersions)"])
                return report
            }
        }
    }

    private static func reference(_ request: Request) -> SecretReference? {
        guard let org = request.uri.queryParameters["org"], let path = request.uri.queryParameters["path"] else { return nil }
        return SecretReference(org: String(org), path: String(path), version: request.uri.queryParameters["version"].flatMap { Int(String($0)) })
    }

    private static func missing(_ what: String) -> Response { AdminProblem(.invalid, "name the \(what)").response }
}
