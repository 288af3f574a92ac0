import Foundation

/// One record as verification reads it: from PostgreSQL (with the indexed columns queries filter
/// on, each of which must say what the body says) or from an export (body and hashes only).
package struct AuditChainRow: Equatable, Sendable {
    package var position: Int64
    package var eventID: String?
    package var action: String?
    package var body: String
    package var previousHash: String
    package var hash: String
    package var outcome: String?
    package var agent: String?
    package var name: String?
    /// The indexed time (queries filter on it): must be the event's own.
    package var time: Date?

    package init(
        position: Int64, eventID: String? = nil, action: String? = nil, body: String, previousHash: String, hash: String, outcome: String? = nil,
        agent: String? = nil, name: String? = nil, time: Date? = nil
    ) {
        self.position = position
        self.eventID = eventID
        self.action = action
        self.body = body
        self.previousHash = previousHash
        self.hash = hash
        self.outcome = outcome
        self.agent = agent
        self.name = name
        self.time = time
    }
}
