import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenIdentity
import WardenNATS

/// Revocations, shared by every gateway replica through a JetStream stream (`WARDEN_REVOCATIONS`,
/// kept 24 h: longer than any token lives). Each replica reads the stream from the start, then
/// follows it live, so a revocation made on any replica reaches all of them within milliseconds,
/// and a replica that starts later still knows it. Until a replica has read everything stored
/// when it started, it refuses tokens (fail closed).
package final class RevocationList: Service, Sendable {
    package static let streamName = "WARDEN_REVOCATIONS"
    static let subject = "warden.revocations.all"
    let bus: NATSConnection
    let logger: Logger
    let onRevoked: @Sendable (Revocation) -> Void
    private let state = Mutex<(tokens: [String: Int64], agents: [String: Int64], apiKeys: [String: Int64], caughtUp: Bool)>(([:], [:], [:], false))

    package init(bus: NATSConnection, logger: Logger, onRevoked: @escaping @Sendable (Revocation) -> Void = { _ in }) {
        self.bus = bus
        self.logger = logger
        self.onRevoked = onRevoked
    }

    /// False until the stored revocations are read.
    package var isReady: Bool { state.withLock { $0.caughtUp } }

    package func isRevoked(_ claims: AgentTokenClaims) -> Bool {
        state.withLock { state in
            state.tokens[claims.jti] != nil || (state.agents[claims.sub].map { claims.iat <= $0 } ?? false)
        }
    }

    /// Stores a revocation; every replica applies it as it reads the stream.
    package func isAPIKeyRevoked(_ id: String) -> Bool { state.withLock { $0.apiKeys[id] != nil } }

    /// When the agent's tokens were last revoked (nil: never).
    package func agentRevokedAt(_ agent: String) -> Int64? { state.withLock { $0.agents[agent] } }

    package func revoke(_ revocation: Revocation) async throws {
        try await ensureStream()
        _ = try await bus.jetStreamPublish(Self.subject, payload: try JSONEncoder().encode(revocation))
        apply(revocation)
    }

    func apply(_ revocation: Revocation) {
        let new = state.withLock { state -> Bool in
            switch revocation.kind {
            case .token: return state.tokens.updateValue(revocation.at, forKey: revocation.id) == nil
            case .apiKey: return state.apiKeys.updateValue(revocation.at, forKey: revocation.id) == nil
            case .subject:
                let previous = state.agents[revocation.id] ?? .min
                state.agents[revocation.id] = max(previous, revocation.at)
                return revocation.at > previous
            }
        }
        if new { onRevoked(revocation) }
    }

    private func ensureStream() async throws {
        var spec = JetStreamStreamSpec(name: Self.streamName, subjects: ["warden.revocations.>"], maxAge: .seconds(24 * 3600))
        spec.duplicateWindow = .seconds(60)
        try await bus.ensureStream(spec)
    }

    /// The stream's last sequence now (0 when empty).
    private func lastSequence() async throws -> UInt64 {
        let reply = try await bus.request("$JS.API.STREAM.INFO.\(Self.streamName)", payload: Data(), headers: [:], timeout: .seconds(5))
        struct Info: Decodable {
            struct State: Decodable {
                var lastSequence: UInt64
                enum CodingKeys: String, CodingKey { case lastSequence = "last_seq" }
            }
            var state: State
        }
        return try JSONDecoder().decode(Info.self, from: reply.payload).state.lastSequence
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.follow()
                } catch {
                    self.logger.warning("cannot read revocations; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Reads the stream from the start and follows it for a minute, then starts over: an ephemeral
    /// consumer lost in a NATS outage is thus replaced within a minute, and nothing is missed
    /// (revocations are idempotent).
    private func follow() async throws {
        try await ensureStream()
        let last = try await lastSequence()
        let reader = try await bus.read(stream: Self.streamName, subject: Self.subject, startSequence: 1)
        if last == 0 { state.withLock { $0.caughtUp = true } }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await delivered in reader {
                    if let revocation = try? JSONDecoder().decode(Revocation.self, from: delivered.message.payload) { self.apply(revocation) }
                    if delivered.streamSequence >= last, !self.isReady {
                        self.state.withLock { $0.caughtUp = true }
                        self.logger.info("revocations loaded")
                    }
                }
            }
            group.addTask { try? await Task.sleep(for: .seconds(60)) }
            await group.next()
            group.cancelAll()
        }
        await reader.close()
    }
}
