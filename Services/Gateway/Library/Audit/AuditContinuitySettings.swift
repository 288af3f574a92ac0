import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenServiceKit

/// Which orgs let their agents' requests continue unrecorded while the audit stream is unavailable
/// and the spool is full (`AuditContinuity`; the default is to refuse them). Kept in the gateway's
/// schema; each replica holds the set of such orgs in memory, read again every `refresh` (a change
/// through another replica shows within it), so the auditor asks nothing of the database when the
/// audit stream is down.
package final class AuditContinuitySettings: Service, Sendable {
    let database: DatabasePool
    let startup: StartupGate
    let logger: Logger
    let refresh: Duration
    private let continuing = Mutex<Set<String>>([])

    package init(database: DatabasePool, startup: StartupGate, refresh: Duration = .seconds(5), logger: Logger) {
        self.database = database
        self.startup = startup
        self.refresh = refresh
        self.logger = logger
    }

    /// Whether the org chose to continue unrecorded (false for orgs never read: fail closed).
    func continues(org: String) -> Bool { continuing.withLock { $0.contains(org) } }

    /// Whether any org chose to continue.
    var anyContinues: Bool { continuing.withLock { !$0.isEmpty } }

    package func run() async throws {
        do { try await cancelWhenGracefulShutdown { try await self.startup.wait() } } catch { return }
        var warned = false
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                var orgs = Set<String>()
                for try await org in try await database.query(
                    "SELECT org FROM audit_continuity WHERE when_unavailable = 'continue'", logger: logger
                ).decode(String.self) {
                    orgs.insert(org)
                }
                continuing.withLock { $0 = orgs }
                warned = false
            } catch {
                // The last set read stays.
                if !warned { logger.warning("cannot read the orgs' audit continuity now", metadata: ["error": "\(error)"]) }
                warned = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.refresh) }
        }
    }

    package func setting(org: String) async throws -> AuditContinuity {
        for try await (choice, by, at) in try await database.query(
            "SELECT when_unavailable, set_by, set_at FROM audit_continuity WHERE org = \(org)", logger: logger
        ).decode((String, String, Date).self) {
            return AuditContinuity(whenUnavailable: AuditContinuity.Choice(rawValue: choice) ?? .refuse, setBy: by, setAt: at)
        }
        return AuditContinuity(whenUnavailable: .refuse)
    }

    package func set(org: String, _ choice: AuditContinuity.Choice, by actor: String) async throws -> AuditContinuity {
        try await database.query(
            """
            INSERT INTO audit_continuity (org, when_unavailable, set_by) VALUES (\(org), \(choice.rawValue), \(actor))
            ON CONFLICT (org) DO UPDATE SET when_unavailable = EXCLUDED.when_unavailable, set_by = EXCLUDED.set_by, set_at = now()
            """, logger: logger)
        continuing.withLock { orgs in
            if choice == .continue { orgs.insert(org) } else { orgs.remove(org) }
        }
        return try await setting(org: org)
    }
}
