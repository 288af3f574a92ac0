/// The first start of an empty system: policy creates the first org and its owner; the vault
/// creates the first platform admin key (unless the operator brings `WARDEN_ADMIN_TOKEN`).
public enum BootstrapEndpoints {
    /// Creates the org and owner when no org exists yet (exactly once, whatever the replicas).
    public static let principals = ServiceEndpoint<BootstrapRequest, BootstrapOutcome>(.policy, "bootstrap")
    /// Creates the first admin key when none was ever created; answers nil afterwards.
    public static let adminKey = ServiceEndpoint<EmptyBody, BootstrapAdminKey>(.vault, "adminkeys.bootstrap")
}

public struct BootstrapRequest: Codable, Sendable, Equatable {
    public var org: String
    public var name: String
    public var ownerEmail: String

    public init(org: String, name: String, ownerEmail: String) {
        self.org = org
        self.name = name
        self.ownerEmail = ownerEmail
    }
}

public struct BootstrapOutcome: Codable, Sendable, Equatable {
    /// False when the system had an org already (nothing was created).
    public var created: Bool
    public var org: Org?
    public var owner: User?

    public init(created: Bool, org: Org?, owner: User?) {
        self.created = created
        self.org = org
        self.owner = owner
    }
}

public struct BootstrapAdminKey: Codable, Sendable, Equatable {
    /// The new key (`wda_<id>_<secret>`), or nil when one was created before.
    public var key: CreatedAPIKey?
    public init(key: CreatedAPIKey?) { self.key = key }
}

/// Platform admin keys: long-lived admin credentials kept by the vault as keyed hashes (the first
/// one made by the bootstrap); they open the admin API like `WARDEN_ADMIN_TOKEN`.
public enum AdminKeyEndpoints {
    public static let create = ServiceEndpoint<AdminKeyCreation, CreatedAPIKey>(.vault, "adminkeys.create")
    public static let list = ServiceEndpoint<EmptyBody, AdminKeyList>(.vault, "adminkeys.list")
    public static let revoke = ServiceEndpoint<APIKeyReference, EmptyBody>(.vault, "adminkeys.revoke")
    /// Checks a presented key; answers its id (401 for every way a key can fail).
    public static let check = ServiceEndpoint<APIKeyPresentation, APIKeyReference>(.vault, "adminkeys.check")
}

public struct AdminKeyCreation: Codable, Sendable, Equatable {
    public var label: String
    public init(label: String) { self.label = label }
}

public struct AdminKey: Codable, Sendable, Equatable {
    public var id: String
    public var label: String
    public var createdAt: Int64
    public var lastUsedAt: Int64?
    public var revokedAt: Int64?

    public init(id: String, label: String, createdAt: Int64, lastUsedAt: Int64?, revokedAt: Int64?) {
        self.id = id
        self.label = label
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

public struct AdminKeyList: Codable, Sendable, Equatable {
    public var keys: [AdminKey]
    public init(keys: [AdminKey]) { self.keys = keys }
}
