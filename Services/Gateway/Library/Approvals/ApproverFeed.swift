import Foundation
import WardenContracts

/// One approver's live feed, whatever carries it (SSE, WebSocket): the changes meant for them, and
/// a tick every `keepAlive` after checking that their token is still good (unexpired, unrevoked,
/// their user enabled and the same role); otherwise the feed ends.
struct ApproverFeed: Sendable {
    let approver: Approver
    let token: String
    let expires: Date
    let access: ApproverAccess
    let feeds: ApproverFeeds
    let keepAlive: Duration

    enum Ending: Sendable, Equatable {
        /// The other side went away.
        case closed
        /// The token expired or was revoked, or the approver changed.
        case credentialEnded
    }

    /// Sends each change (nil: a keep-alive) until the feed ends; says why it ended.
    func follow(closed: AsyncStream<Void>?, send: (ApprovalChange?) async throws -> Void) async throws -> Ending {
        let changes = feeds.subscribe(approver)
        let keepAlive = self.keepAlive
        return try await withThrowingTaskGroup(of: Void.self) { group in
            let (ticks, tick) = AsyncStream.makeStream(of: ApprovalChange?.self, bufferingPolicy: .bufferingNewest(ApproverFeeds.buffer))
            group.addTask {
                for await change in changes { tick.yield(change) }
                tick.finish()
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: keepAlive)
                    tick.yield(nil)
                }
            }
            if let closed {
                group.addTask {
                    for await _ in closed {}
                    tick.finish()
                }
            }
            var ending = Ending.closed
            for await change in ticks {
                if let change {
                    try await send(change)
                    continue
                }
                guard Date() < expires, case .allowed(let still) = await access.approver(token: token), still == approver else {
                    ending = .credentialEnded
                    break
                }
                try await send(nil)
            }
            group.cancelAll()
            return ending
        }
    }
}
