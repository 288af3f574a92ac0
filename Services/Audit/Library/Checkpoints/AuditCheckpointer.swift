import Crypto
import Foundation
import Logging
import ServiceLifecycle
import WardenAuditChain
import WardenContracts
import WardenServiceKit

/// Has the vault sign every chain's head that moved, at intervals (`WARDEN_AUDIT_CHECKPOINT_SECONDS`,
/// default 60), and keeps a copy of each checkpoint beside the records (exports carry them). The
/// vault keeps what it signed and signs positions only forward, so replicas signing the same head
/// at once get one checkpoint, and a chain rewritten here is refused (and logged) rather than signed
/// again. Retention runs on the same beat: records up to a checkpoint are removed only once the
/// vault has signed that checkpoint as the chain's new base.
package struct AuditCheckpointer: Service {
    let store: AuditStore
    let client: ServiceClient
    let interval: Duration
    let audit: AuditPublisher
    let logger: Logger

    package init(store: AuditStore, client: ServiceClient, interval: Duration, audit: AuditPublisher, logger: Logger) {
        self.store = store
        self.client = client
        self.interval = interval
        self.audit = audit
        self.logger = logger
    }

    package static func interval(_ environment: [String: String]) throws(ConfigurationError) -> Duration {
        .seconds(
            try ServiceConfiguration.number(
                environment, "WARDEN_AUDIT_CHECKPOINT_SECONDS", key: "audit.checkpoint.seconds", range: 1...86_400, unit: "seconds", default: 60))
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await beat()
            }
        }
    }

    /// One round: every moved head signed, then retention. A chain that fails does not stop the others.
    func beat() async {
        do {
            for head in try await store.heads() {
                do {
                    _ = try await sign(chain: head.chain, position: head.position, hash: head.hash)
                } catch let error as ServiceError where error.code == .conflict {
                    logger.critical(
                        "the vault refuses to sign this audit chain's head: another hash was signed at its position (run warden audit verify)",
                        metadata: ["audit.chain": "\(head.chain)", "audit.position": "\(head.position)", "error": "\(error.message)"])
                } catch {
                    logger.warning(
                        "an audit checkpoint cannot be signed now; retrying", metadata: ["audit.chain": "\(head.chain)", "error": "\(error)"])
                }
            }
            for cut in try await store.retentionCuts(now: Date()) {
                do {
                    try await applyRetention(chain: cut.chain, position: cut.position, hash: cut.hash)
                } catch {
                    logger.warning("retention cannot be applied now; retrying", metadata: ["audit.chain": "\(cut.chain)", "error": "\(error)"])
                }
            }
        } catch {
            logger.warning("audit checkpoints cannot be signed now; retrying", metadata: ["error": "\(error)"])
        }
    }

    private func applyRetention(chain: String, position: Int64, hash: String) async throws {
        let org = chain.isEmpty ? nil : chain
        let base = try await client.call(AuditKeyEndpoints.sign, AuditSignRequest(kind: .base, org: org, position: position, hash: hash))
        let removed = try await store.cut(to: base)
        guard removed > 0 else { return }
        logger.notice(
            "audit records removed by retention",
            metadata: ["audit.chain": "\(chain)", "audit.through": "\(position)", "audit.removed": "\(removed)"])
        await audit.publish(
            AuditEvent(
                service: .audit, action: "audit.retention_applied", outcome: .success, org: org, actor: "audit", target: "records 1–\(position)",
                detail: "\(removed) records older than the retention period removed; the chain now starts after the checkpoint at \(position)"))
    }

    /// A checkpoint of the chain's head now (an export ends at one; the vault answers with a later
    /// one if another replica signed one meanwhile).
    package func checkpointHead(org: String?) async throws -> AuditCheckpoint? {
        let chain = org ?? ""
        guard let head = try await store.head(chain: chain) else { return nil }
        return try await sign(chain: chain, position: head.position, hash: head.hash)
    }

    /// What the vault signed for the chain (every page): what verification trusts.
    package func signed(org: String?) async throws -> AuditSignedStatements {
        var all = try await client.call(AuditKeyEndpoints.signed, AuditSignedRequest(org: org))
        var page = all
        while page.checkpoints.count == AuditSignedStatements.pageSize, let last = page.checkpoints.last {
            page = try await client.call(AuditKeyEndpoints.signed, AuditSignedRequest(org: org, after: last.position))
            all.checkpoints += page.checkpoints
        }
        return all
    }

    /// The vault's published keys.
    package func keys() async throws -> [String: Curve25519.Signing.PublicKey] {
        try await client.call(AuditKeyEndpoints.keys, AuditKeysRequest()).signingKeys
    }

    /// Sets a chain's retention period where the vault enforces it, then here (where cuts are chosen).
    package func setRetention(_ setting: AuditRetentionSetting) async throws -> AuditRetentionSetting {
        _ = try await client.call(AuditKeyEndpoints.retention, setting)
        return try await store.setRetention(setting)
    }

    private func sign(chain: String, position: Int64, hash: String) async throws -> AuditCheckpoint {
        let checkpoint = try await client.call(
            AuditKeyEndpoints.sign, AuditSignRequest(org: chain.isEmpty ? nil : chain, position: position, hash: hash))
        try await store.store(checkpoint)
        logger.debug("audit checkpoint signed", metadata: ["audit.chain": "\(chain)", "audit.position": "\(position)"])
        return checkpoint
    }
}
