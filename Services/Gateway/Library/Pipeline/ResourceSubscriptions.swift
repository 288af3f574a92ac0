import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP
import WardenNATS

/// Which sessions subscribed to which resource, per replica: a subscription is forwarded to this
/// replica's instance of the server, whose `notifications/resources/updated` therefore arrives here.
package final class ResourceSubscriptions: Sendable {
    private let table = Mutex<[String: Set<String>]>([:])

    package init() {}

    static func key(server: String, uri: String) -> String { server + "\u{0}" + uri }

    func add(session: String, server: String, uri: String) {
        _ = table.withLock { $0[Self.key(server: server, uri: uri), default: []].insert(session) }
    }

    func remove(session: String, server: String, uri: String) {
        table.withLock { table in
            let key = Self.key(server: server, uri: uri)
            table[key]?.remove(session)
            if table[key]?.isEmpty == true { table[key] = nil }
        }
    }

    func removeAll(session: String) {
        table.withLock { table in
            for key in table.keys {
                table[key]?.remove(session)
                if table[key]?.isEmpty == true { table[key] = nil }
            }
        }
    }

    func sessions(server: String, uri: String) -> Set<String> {
        table.withLock { $0[Self.key(server: server, uri: uri)] ?? [] }
    }
}
