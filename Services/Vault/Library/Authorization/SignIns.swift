import Crypto
import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// Users' passwords and sign-in sessions for the authorization server's pages. Failed sign-ins
/// are counted per account and per client address in PostgreSQL (every replica sees the same
/// count): five failures for one account within 15 minutes lock it for 15 minutes, fifty from one
/// address lock the address. A locked account is refused before its password is checked, so a
/// guesser cannot spend the vault's CPU on it. Sessions last 12 hours; only their tokens' SHA-256
/// is stored.
package struct SignIns: Sendable {
    let database: DatabasePool
    let client: ServiceClient
    let audit: @Sendable (AuditEvent) async -> Void
    let logger: Logger

    static let accountFailures = 5
    static let addressFailures = 50
    static let window: Int64 = 15 * 60
    static let sessionLifetime: Int64 = 12 * 3600

    /// A hash nobody's password matches: an unknown account costs the same time as a known one.
    static let decoy = PasswordHash(logN: 15, r: 8, p: 1, salt: [UInt8](repeating: 0, count: 16), hash: [UInt8](repeating: 0, count: 32))

    package func setPassword(_ setting: PasswordSetting) async throws {
        // The user must exist in the org (and the org too): a typo is an error, not a stray row.
        let user = try await client.call(PrincipalEndpoints.listUsers, OrgReference(org: setting.org)).users.first { $0.id == setting.user }
        guard let user else { throw ServiceError(.notFound, "no user '\(setting.user.prefix(32))' in org '\(setting.org.prefix(32))'") }
        guard let password = setting.password else {
            try await database.query("DELETE FROM authz_passwords WHERE org = \(setting.org) AND user_id = \(user.id)", logger: logger)
            try await database.query("DELETE FROM authz_sessions WHERE org = \(setting.org) AND user_id = \(user.id)", logger: logger)
            return
        }
        try PasswordHash.check(password)
        let hash = try await PasswordHash.make(password).encoded
        try await database.query(
            """
            INSERT INTO authz_passwords (org, user_id, hash) VALUES (\(setting.org), \(user.id), \(hash))
            ON CONFLICT (org, user_id) DO UPDATE SET hash = excluded.hash, updated_at = now()
            """, logger: logger)
        // A new password ends the lock-out and the sessions opened with the old one.
        try await database.query("DELETE FROM authz_failures WHERE key = \(Self.accountKey(setting.org, user.email))", logger: logger)
        try await database.query("DELETE FROM authz_sessions WHERE org = \(setting.org) AND user_id = \(user.id)", logger: logger)
    }

    package func signIn(_ request: SignInRequest) async throws -> SignInSession {
        let accountKey = Self.accountKey(request.org, request.email), addressKey = Self.addressKey(request.address)
        // Each attempt takes its place in the counts before the password is checked: attempts made at
        // once cannot all pass a check that none of them has counted yet.
        if let wait = try await attempt(accountKey, limit: Self.accountFailures) {
            throw ServiceError(.tooManyRequests, "too many failed sign-ins for this account; try again in \(Self.minutes(wait))")
        }
        if let wait = try await attempt(addressKey, limit: Self.addressFailures) {
            throw ServiceError(.tooManyRequests, "too many failed sign-ins from this address; try again in \(Self.minutes(wait))")
        }
        let user: User?
        switch await findUser(request) {
        case .success(let found): user = found
        case .failure(let error):
            guard error.code == .notFound else { throw error }
            user = nil
        }
        var stored: PasswordHash?
        if let user {
            for try await hash in try await database.query(
                "SELECT hash FROM authz_passwords WHERE org = \(request.org) AND user_id = \(user.id)", logger: logger
            ).decode(String.self) {
                stored = PasswordHash(encoded: hash)
            }
        }
        let matches = try await (stored ?? Self.decoy).matches(request.password)
        guard let user, stored != nil, matches, !user.disabled else {
            await audit(
                AuditEvent(
                    service: .vault, action: "user.sign-in-refused", outcome: .denied, org: request.org,
                    actor: user.map { "user:\($0.id)" } ?? "unknown",
                    target: "oauth sign-in", detail: "wrong email or password from \(request.address.prefix(64))"))
            throw ServiceError(.unauthorized, "the email or password is wrong")
        }
        // A success is not a failure: the account starts again, the address gets its attempt back.
        try await database.query("DELETE FROM authz_failures WHERE key = \(accountKey)", logger: logger)
        try await database.query(
            "UPDATE authz_failures SET failures = greatest(failures - 1, 0) WHERE key = \(addressKey) AND locked_until IS NULL", logger: logger)
        return try await openSession(user, method: "password", address: request.address)
    }

    /// A session for the org's user with this email, who signed in at the org's identity provider.
    package func open(org: String, email: String, method: String, roles: [String]?, address: String?) async throws -> SignInSession {
        let user: User
        switch await findUser(SignInRequest(org: org, email: email, password: "", address: "")) {
        case .success(let found): user = found
        case .failure(let error):
            guard error.code == .notFound else { throw error }
            throw ServiceError(.unauthorized, "\(email) is not a user of org \(org); ask its admins to add you")
        }
        guard !user.disabled else { throw ServiceError(.unauthorized, "\(email) is disabled in org \(org)") }
        return try await openSession(user, method: method, address: address, roles: roles)
    }

    /// `roles`: what the org's identity provider says (its roles claim), carried into the tokens.
    func openSession(_ user: User, method: String, address: String?, roles: [String]? = nil) async throws -> SignInSession {
        let token = Self.randomToken(), csrf = Self.randomToken()
        let expiresAt = Int64(Date().timeIntervalSince1970) + Self.sessionLifetime
        try await database.query(
            """
            INSERT INTO authz_sessions (token_hash, org, user_id, email, csrf, roles, expires_at)
            VALUES (\(Self.digest(token)), \(user.org), \(user.id), \(user.email), \(csrf), \(roles), \(Date(timeIntervalSince1970: Double(expiresAt))))
            """, logger: logger)
        // Expired sessions go as new ones come.
        try await database.query("DELETE FROM authz_sessions WHERE expires_at < now() - interval '1 day'", logger: logger)
        await audit(
            AuditEvent(
                service: .vault, action: "user.signed-in", outcome: .success, org: user.org, actor: "user:\(user.id)", target: "oauth sign-in",
                detail: "with \(method)" + (address.map { " from \($0)" } ?? "")))
        return SignInSession(token: token, org: user.org, user: user.id, email: user.email, csrf: csrf, expiresAt: expiresAt, roles: roles)
    }

    func findUser(_ request: SignInRequest) async -> Result<User, ServiceError> {
        do {
            return .success(try await client.call(PrincipalEndpoints.findUser, UserLookup(org: request.org, email: request.email)))
        } catch {
            return .failure(error)
        }
    }

    package func session(_ reference: SessionReference) async throws -> SignInSession {
        for try await (org, user, email, csrf, roles, expires) in try await database.query(
            """
            SELECT org, user_id, email, csrf, roles, extract(epoch FROM expires_at)::bigint FROM authz_sessions
            WHERE token_hash = \(Self.digest(reference.token)) AND expires_at > now()
            """, logger: logger
        ).decode((String, String, String, String, [String]?, Int64).self) {
            return SignInSession(token: nil, org: org, user: user, email: email, csrf: csrf, expiresAt: expires, roles: roles)
        }
        throw ServiceError(.unauthorized, "the sign-in session has ended; sign in again")
    }

    package func signOut(_ reference: SessionReference) async throws {
        try await database.query("DELETE FROM authz_sessions WHERE token_hash = \(Self.digest(reference.token))", logger: logger)
    }

    /// Counts an attempt for `key` (a new window once the last is over); seconds until it may try
    /// again when this attempt is one too many or the key is locked, nil when it may go ahead.
    func attempt(_ key: String, limit: Int) async throws -> Int64? {
        let window = Double(Self.window)
        for try await (failures, wait) in try await database.query(
            """
            INSERT INTO authz_failures (key, failures, first_at) VALUES (\(key), 1, now())
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN authz_failures.locked_until > now() THEN authz_failures.failures
                    WHEN authz_failures.first_at < now() - make_interval(secs => \(window)) OR authz_failures.locked_until IS NOT NULL THEN 1
                    ELSE authz_failures.failures + 1 END,
                first_at = CASE WHEN authz_failures.locked_until > now() THEN authz_failures.first_at
                    WHEN authz_failures.first_at < now() - make_interval(secs => \(window)) OR authz_failures.locked_until IS NOT NULL THEN now()
                    ELSE authz_failures.first_at END,
                locked_until = CASE WHEN authz_failures.locked_until > now() THEN authz_failures.locked_until ELSE NULL END
            RETURNING failures, coalesce(extract(epoch FROM locked_until - now())::bigint, 0)
            """, logger: logger
        ).decode((Int, Int64).self) {
            if wait > 0 { return wait }
            if failures > limit {
                try await database.query(
                    "UPDATE authz_failures SET locked_until = now() + make_interval(secs => \(window)) WHERE key = \(key)", logger: logger)
                return Self.window
            }
        }
        // Counts older than a day go as new ones come.
        try await database.query(
            "DELETE FROM authz_failures WHERE first_at < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())", logger: logger)
        return nil
    }

    /// Failures from one address: an IPv6 client is counted by its /64 (one host's usual allocation).
    static func addressKey(_ address: String) -> String {
        var v6 = in6_addr()
        guard address.contains(":"), inet_pton(AF_INET6, address, &v6) == 1 else { return "address:\(address.prefix(64))" }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return "address:\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        }
        return "address:" + stride(from: 0, to: 8, by: 2).map { String(format: "%02x%02x", bytes[$0], bytes[$0 + 1]) }.joined(separator: ":")
            + "::/64"
    }

    static func accountKey(_ org: String, _ email: String) -> String { "account:\(org)/\(email.lowercased().prefix(320))" }

    static func minutes(_ seconds: Int64) -> String {
        let minutes = (seconds + 59) / 60
        return minutes == 1 ? "1 minute" : "\(minutes) minutes"
    }

    /// 256 random bits, base64url.
    package static func randomToken() -> String {
        Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255) })
    }

    package static func digest(_ token: String) -> ByteBuffer { ByteBuffer(bytes: SHA256.hash(data: Data(token.utf8))) }
}
