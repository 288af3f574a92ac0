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
    let database: PostgresClient
    let client: ServiceClient
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
        let accountKey = Self.accountKey(request.org, request.email), addressKey = "address:\(request.address.prefix(64))"
        if let wait = try await lockedFor(accountKey) {
            throw ServiceError(.tooManyRequests, "too many failed sign-ins for this account; try again in \(Self.minutes(wait))")
        }
        if let wait = try await lockedFor(addressKey) {
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
            try await fail(accountKey)
            try await fail(addressKey)
            throw ServiceError(.unauthorized, "the email or password is wrong")
        }
        try await database.query("DELETE FROM authz_failures WHERE key = \(accountKey)", logger: logger)
        let token = Self.randomToken(), csrf = Self.randomToken()
        let expiresAt = Int64(Date().timeIntervalSince1970) + Self.sessionLifetime
        try await database.query(
            """
            INSERT INTO authz_sessions (token_hash, org, user_id, email, csrf, expires_at)
            VALUES (\(Self.digest(token)), \(user.org), \(user.id), \(user.email), \(csrf), \(Date(timeIntervalSince1970: Double(expiresAt))))
            """, logger: logger)
        // Expired sessions go as new ones come.
        try await database.query("DELETE FROM authz_sessions WHERE expires_at < now() - interval '1 day'", logger: logger)
        return SignInSession(token: token, org: user.org, user: user.id, email: user.email, csrf: csrf, expiresAt: expiresAt)
    }

    func findUser(_ request: SignInRequest) async -> Result<User, ServiceError> {
        do {
            return .success(try await client.call(PrincipalEndpoints.findUser, UserLookup(org: request.org, email: request.email)))
        } catch {
            return .failure(error)
        }
    }

    package func session(_ reference: SessionReference) async throws -> SignInSession {
        for try await (org, user, email, csrf, expires) in try await database.query(
            """
            SELECT org, user_id, email, csrf, extract(epoch FROM expires_at)::bigint FROM authz_sessions
            WHERE token_hash = \(Self.digest(reference.token)) AND expires_at > now()
            """, logger: logger
        ).decode((String, String, String, String, Int64).self) {
            return SignInSession(token: nil, org: org, user: user, email: email, csrf: csrf, expiresAt: expires)
        }
        throw ServiceError(.unauthorized, "the sign-in session has ended; sign in again")
    }

    package func signOut(_ reference: SessionReference) async throws {
        try await database.query("DELETE FROM authz_sessions WHERE token_hash = \(Self.digest(reference.token))", logger: logger)
    }

    /// Seconds until `key` may try again; nil when it is not locked.
    func lockedFor(_ key: String) async throws -> Int64? {
        for try await wait in try await database.query(
            "SELECT extract(epoch FROM locked_until - now())::bigint FROM authz_failures WHERE key = \(key) AND locked_until > now()",
            logger: logger
        ).decode(Int64.self) {
            return max(1, wait)
        }
        return nil
    }

    /// Counts a failure: a count older than the window starts again; reaching the limit locks.
    func fail(_ key: String) async throws {
        let limit = key.hasPrefix("account:") ? Self.accountFailures : Self.addressFailures
        try await database.query(
            """
            INSERT INTO authz_failures (key, failures, first_at) VALUES (\(key), 1, now())
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN authz_failures.first_at < now() - make_interval(secs => \(Double(Self.window))) THEN 1 ELSE authz_failures.failures + 1 END,
                first_at = CASE WHEN authz_failures.first_at < now() - make_interval(secs => \(Double(Self.window))) THEN now() ELSE authz_failures.first_at END
            """, logger: logger)
        try await database.query(
            """
            UPDATE authz_failures SET locked_until = now() + make_interval(secs => \(Double(Self.window))), failures = 0, first_at = now()
            WHERE key = \(key) AND failures >= \(limit)
            """, logger: logger)
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
