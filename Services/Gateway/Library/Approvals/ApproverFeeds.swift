import Synchronization
import WardenContracts

/// The approvers connected to this gateway's live channels (SSE, WebSocket), each with the changes
/// meant for them: their org's requests they may decide or have decided, nothing else.
package final class ApproverFeeds: Sendable {
    private struct Feed {
        var approver: Approver
        var continuation: AsyncStream<ApprovalChange>.Continuation
    }

    private let feeds = Mutex<[Int: Feed]>([:])
    private let nextID = Atomic<Int>(0)
    /// Changes kept for a reader that is slower than the changes come (then the oldest go).
    static let buffer = 256

    package init() {}

    /// A feed for `approver`, ended when the returned stream is dropped.
    package func subscribe(_ approver: Approver) -> AsyncStream<ApprovalChange> {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream.makeStream(of: ApprovalChange.self, bufferingPolicy: .bufferingNewest(Self.buffer))
        continuation.onTermination = { [weak self] _ in _ = self?.feeds.withLock { $0.removeValue(forKey: id) } }
        feeds.withLock { $0[id] = Feed(approver: approver, continuation: continuation) }
        return stream
    }

    package var count: Int { feeds.withLock { $0.count } }

    /// Whether `approver` is meant to see `request`.
    package static func shows(_ request: ApprovalRequest, to approver: Approver) -> Bool {
        request.org == approver.org
            && (request.approverUsers.contains(approver.user) || request.approverRoles.contains(approver.role)
                || request.votes.contains { $0.user == approver.user })
    }

    package func deliver(_ change: ApprovalChange) {
        let targets = feeds.withLock { feeds in feeds.values.filter { Self.shows(change.request, to: $0.approver) }.map(\.continuation) }
        for continuation in targets { continuation.yield(change) }
    }
}
