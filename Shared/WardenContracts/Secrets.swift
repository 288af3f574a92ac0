import Foundation
import WardenMCP

/// The vault's secrets, over NATS. Values are write-only for people: `read` serves services (the
/// gateway resolving a credential at execution time); no admin route returns a value.
public enum SecretEndpoints {
    public static let write = ServiceEndpoint<SecretWrite, SecretMetadata>(.vault, "secrets.write")
    public static let list = ServiceEndpoint<SecretListRequest, SecretList>(.vault, "secrets.list")
    public static let show = ServiceEndpoint<SecretReference, SecretMetadata>(.vault, "secrets.show")
    public static let versions = ServiceEndpoint<SecretReference, SecretVersionList>(.vault, "secrets.versions")
    public static let delete = ServiceEndpoint<SecretChange, SecretMetadata>(.vault, "secrets.delete")
    public static let undelete = ServiceEndpoint<SecretChange, SecretMetadata>(.vault, "secrets.undelete")
    public static let destroy = ServiceEndpoint<SecretDestruction, SecretMetadata>(.vault, "secrets.destroy")
    /// The value, for the gateway only (it checks the caller).
    public static let read = ServiceEndpoint<SecretReference, SecretValue>(.vault, "secrets.read")
    /// Published (not a request) after a secret's value changed, was deleted, undeleted or
    /// destroyed, or its org was shredded: `SecretChanged`. Every gateway replica drops what it
    /// cached and restarts the stdio servers that use it.
    public static let changedSubject = "warden.broadcast.secrets"
}

/// A secret whose value changed (`path` nil: every secret of the org).
public struct SecretChanged: Codable, Sendable, Equatable {
    public var org: String
    public var path: String?

    public init(org: String, path: String?) {
        self.org = org
        self.path = path
    }
}

/// Key management of the vault, over NATS.
public enum VaultKeyEndpoints {
    public static let status = ServiceEndpoint<EmptyBody, VaultStatus>(.vault, "vault.status")
    public static let rotateRootKey = ServiceEndpoint<KeyRotationRequest, KeyRotationReport>(.vault, "vault.rotate-root-key")
    public static let rotateOrgKey = ServiceEndpoint<KeyRotationRequest, KeyRotationReport>(.vault, "vault.rotate-org-key")
    public static let reencrypt = ServiceEndpoint<SecretReencryption, KeyRotationReport>(.vault, "vault.reencrypt")
    public static let shredOrg = ServiceEndpoint<OrgShredding, KeyRotationReport>(.vault, "vault.shred-org")
}

public struct SecretWrite: Codable, Sendable {
    public var org: String
    public var path: String
    /// The value's bytes, base64 (values may be binary); at most 64 KiB decoded.
    public var value: String
    /// Replaces the description; an empty one clears it; nil keeps it.
    public var description: String?
    /// Replaces the tags; nil keeps them.
    public var tags: [String]?
    /// Sets an expiry; nil keeps the one there is (`clearsExpiry` removes it).
    public var expiresAt: Date?
    public var clearsExpiry: Bool
    /// Who writes it (the admin principal), for the metadata.
    public var actor: String

    public init(
        org: String, path: String, value: String, description: String? = nil, tags: [String]? = nil, expiresAt: Date? = nil,
        clearsExpiry: Bool = false, actor: String
    ) {
        self.org = org
        self.path = path
        self.value = value
        self.description = description
        self.tags = tags
        self.expiresAt = expiresAt
        self.clearsExpiry = clearsExpiry
        self.actor = actor
    }

    enum CodingKeys: String, CodingKey { case org, path, value, description, tags, expiresAt, clearsExpiry, actor }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            org: try container.decode(String.self, forKey: .org), path: try container.decode(String.self, forKey: .path),
            value: try container.decode(String.self, forKey: .value), description: try container.decodeIfPresent(String.self, forKey: .description),
            tags: try container.decodeIfPresent([String].self, forKey: .tags),
            expiresAt: try container.decodeIfPresent(Date.self, forKey: .expiresAt),
            clearsExpiry: try container.decodeIfPresent(Bool.self, forKey: .clearsExpiry) ?? false,
            actor: try container.decode(String.self, forKey: .actor))
    }
}

public struct SecretReference: Codable, Sendable, Equatable, Hashable {
    /// Where the secrets of shared servers (servers of no org) live; only platform admins manage
    /// them. Not a valid org id, so no org can take the name.
    public static let sharedOrg = "warden:shared"

    public var org: String
    public var path: String
    /// A given version; nil: the latest.
    public var version: Int?

    public init(org: String, path: String, version: Int? = nil) {
        self.org = org
        self.path = path
        self.version = version
    }
}

public struct SecretChange: Codable, Sendable {
    public var org: String
    public var path: String
    public var actor: String

    public init(org: String, path: String, actor: String) {
        self.org = org
        self.path = path
        self.actor = actor
    }
}

public struct SecretDestruction: Codable, Sendable {
    public var org: String
    public var path: String
    /// The versions whose ciphertext is erased; nil: every version.
    public var versions: [Int]?
    public var actor: String

    public init(org: String, path: String, versions: [Int]? = nil, actor: String) {
        self.org = org
        self.path = path
        self.versions = versions
        self.actor = actor
    }
}

public struct SecretListRequest: Codable, Sendable {
    public var org: String
    /// Only paths under this prefix (`github/`).
    public var prefix: String?
    public var includeDeleted: Bool

    public init(org: String, prefix: String? = nil, includeDeleted: Bool = false) {
        self.org = org
        self.prefix = prefix
        self.includeDeleted = includeDeleted
    }
}

/// What is known about a secret, never its value.
public struct SecretMetadata: Codable, Sendable, Equatable {
    public var org: String
    public var path: String
    public var currentVersion: Int
    public var description: String?
    public var tags: [String]
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var deletedAt: Date?

    public init(
        org: String, path: String, currentVersion: Int, description: String?, tags: [String], createdAt: Date, createdBy: String, updatedAt: Date,
        updatedBy: String, expiresAt: Date?, lastUsedAt: Date?, deletedAt: Date?
    ) {
        self.org = org
        self.path = path
        self.currentVersion = currentVersion
        self.description = description
        self.tags = tags
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.deletedAt = deletedAt
    }
}

public struct SecretList: Codable, Sendable, Equatable {
    public var secrets: [SecretMetadata]
    public init(secrets: [SecretMetadata]) { self.secrets = secrets }
}

public struct SecretVersionInfo: Codable, Sendable, Equatable {
    public var version: Int
    public var createdAt: Date
    public var createdBy: String
    /// The ciphertext was erased: this version can never be read again.
    public var destroyed: Bool
    /// The org key version its data key is wrapped with.
    public var orgKeyVersion: Int?

    public init(version: Int, createdAt: Date, createdBy: String, destroyed: Bool, orgKeyVersion: Int?) {
        self.version = version
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.destroyed = destroyed
        self.orgKeyVersion = orgKeyVersion
    }
}

public struct SecretVersionList: Codable, Sendable, Equatable {
    public var versions: [SecretVersionInfo]
    public init(versions: [SecretVersionInfo]) { self.versions = versions }
}

/// A secret's value (base64), for a service resolving a credential.
public struct SecretValue: Codable, Sendable {
    public var version: Int
    public var value: String

    public init(version: Int, value: String) {
        self.version = version
        self.value = value
    }
}

public struct KeyRotationRequest: Codable, Sendable {
    /// The org whose key rotates (rotate-org-key only).
    public var org: String?
    /// Report what would change; change nothing.
    public var dryRun: Bool

    public init(org: String? = nil, dryRun: Bool = false) {
        self.org = org
        self.dryRun = dryRun
    }
}

public struct SecretReencryption: Codable, Sendable {
    public var org: String
    public var path: String
    public var dryRun: Bool

    public init(org: String, path: String, dryRun: Bool = false) {
        self.org = org
        self.path = path
        self.dryRun = dryRun
    }
}

public struct OrgShredding: Codable, Sendable {
    public var org: String
    /// Must equal `org`: destroying an org's keys is not undone.
    public var confirm: String

    public init(org: String, confirm: String) {
        self.org = org
        self.confirm = confirm
    }
}

/// What a rotation, re-encryption or shredding changed (or, dry, would change).
public struct KeyRotationReport: Codable, Sendable, Equatable {
    public var dryRun: Bool
    /// Org keys rewrapped under the root key (root rotation) or created (org rotation).
    public var orgKeys: Int
    /// Data keys rewrapped under a new org key.
    public var dataKeys: Int
    /// Secret versions sealed again under a new data key (re-encryption) or erased (shredding).
    public var secretVersions: Int
    /// Shredding: destroyed org key versions that were not bound to a share outside the database
    /// (made by an earlier Warden): a dump taken before still opens what they sealed.
    public var unboundOrgKeys: Int?
    /// Shredding: whether this run erased the org's share (false when an earlier, interrupted run
    /// did, or when it had none).
    public var shareErased: Bool?
    /// Seconds the work took.
    public var seconds: Double

    public init(
        dryRun: Bool, orgKeys: Int = 0, dataKeys: Int = 0, secretVersions: Int = 0, unboundOrgKeys: Int? = nil, shareErased: Bool? = nil,
        seconds: Double = 0
    ) {
        self.dryRun = dryRun
        self.orgKeys = orgKeys
        self.dataKeys = dataKeys
        self.secretVersions = secretVersions
        self.unboundOrgKeys = unboundOrgKeys
        self.shareErased = shareErased
        self.seconds = seconds
    }
}

public struct VaultStatus: Codable, Sendable, Equatable {
    public struct OrgKeyState: Codable, Sendable, Equatable {
        public var org: String
        public var currentVersion: Int
        public var versions: Int
        /// The root key that wraps this org's current key.
        public var rootKeyID: String

        public init(org: String, currentVersion: Int, versions: Int, rootKeyID: String) {
            self.org = org
            self.currentVersion = currentVersion
            self.versions = versions
            self.rootKeyID = rootKeyID
        }
    }

    /// `local`, `pkcs11` or `aws-kms`.
    public var provider: String
    /// Which root key wraps new org keys (a fingerprint or a provider's key name, never key material).
    public var rootKeyID: String
    /// A previous root key the vault can still unwrap with, until `rotate-root-key` moved everything.
    public var previousRootKeyID: String?
    public var orgKeys: [OrgKeyState]
    /// Org keys wrapped by another root than the current one (0 after a completed root rotation).
    public var orgKeysUnderOtherRoots: Int
    /// Org key versions made by an earlier Warden, not bound to a share outside the database:
    /// shredding their org does not protect against a dump taken before (`rotate-org-key` binds).
    public var orgKeysWithoutShare: Int?
    /// Unwrapped org keys held by the answering replica, and for how long each is kept.
    public var cachedOrgKeys: Int
    public var cacheSeconds: Int

    public init(
        provider: String, rootKeyID: String, previousRootKeyID: String?, orgKeys: [OrgKeyState], orgKeysUnderOtherRoots: Int,
        orgKeysWithoutShare: Int?, cachedOrgKeys: Int, cacheSeconds: Int
    ) {
        self.provider = provider
        self.rootKeyID = rootKeyID
        self.previousRootKeyID = previousRootKeyID
        self.orgKeys = orgKeys
        self.orgKeysUnderOtherRoots = orgKeysUnderOtherRoots
        self.orgKeysWithoutShare = orgKeysWithoutShare
        self.cachedOrgKeys = cachedOrgKeys
        self.cacheSeconds = cacheSeconds
    }
}

extension SecretReference: HandWrittenJSON {
    public init?(json: JSONValue) {
        do throws(JSONFields.Mismatch) {
            let fields = try JSONFields(json)
            self.init(org: try fields.string("org"), path: try fields.string("path"), version: try fields.optionalInt("version"))
        } catch {
            return nil
        }
    }

    public func writeJSON(to json: inout JSONBytes) {
        json.beginObject()
        json.field("org", org)
        json.field("path", path)
        json.field("version", version)
        json.endObject()
    }
}

extension SecretValue: HandWrittenJSON {
    public init?(json: JSONValue) {
        do throws(JSONFields.Mismatch) {
            let fields = try JSONFields(json)
            self.init(version: try fields.int("version"), value: try fields.string("value"))
        } catch {
            return nil
        }
    }

    public func writeJSON(to json: inout JSONBytes) {
        json.beginObject()
        json.field("version", version)
        json.field("value", value)
        json.endObject()
    }
}
