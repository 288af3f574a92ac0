import NIOCore
import Testing

@testable import WardenGateway

/// The downstream client's connections as a value: at most `maximum` open, requests beyond waiting
/// first come first served, each place taken given back once.
@Suite struct DownstreamConnectionPoolTests {
    typealias Pool = DownstreamConnectionPool<String>

    /// What `acquire` gave, as text.
    func acquire(
        _ pool: inout Pool, _ request: UInt64, retry: Bool = false, beyondLimit: Bool = false, usable: (String) -> Bool = { _ in true }
    ) -> (String, close: [String]) {
        let (acquired, close) = pool.acquire(request, retry: retry, beyondLimit: beyondLimit, usable: usable)
        switch acquired {
        case .granted(.use(let connection)): return (connection, close)
        case .granted(.connect): return ("connect", close)
        case .wait: return ("wait", close)
        }
    }

    /// What `kept` handed over, as text, and what is to be closed.
    func keep(_ pool: inout Pool, _ connection: String, expired: (String) -> Bool = { _ in false }) -> (String, close: [String]) {
        let (handover, close) = pool.kept(connection, expired: expired)
        return (handed(handover), close)
    }

    func release(_ pool: inout Pool) -> String { handed(pool.released()) }

    func handed(_ handover: Pool.Handover) -> String {
        switch handover {
        case .none: "none"
        case .grant(let request, .use(let connection)): "\(request) uses \(connection)"
        case .grant(let request, .connect): "\(request) connects"
        }
    }

    @Test func requestsPastTheLimitWaitInOrderForAConnectionKeptOrClosed() {
        var pool = Pool(maximum: 2, maximumIdle: 2)
        #expect(acquire(&pool, 1).0 == "connect")
        #expect(acquire(&pool, 2).0 == "connect")
        #expect(acquire(&pool, 3).0 == "wait")
        #expect(acquire(&pool, 4).0 == "wait")
        #expect(pool.open == 2 && pool.waiting == [3, 4])
        // A kept connection goes to the first waiting request, not to the idle list.
        let kept = keep(&pool, "a")
        #expect(kept.0 == "3 uses a" && kept.close.isEmpty && pool.idle.isEmpty)
        // A closed one gives its place to the next.
        #expect(release(&pool) == "4 connects")
        #expect(pool.open == 2 && pool.waiting.isEmpty)
        // With nobody waiting, a kept connection is kept and a closed one's place is free.
        #expect(keep(&pool, "b").0 == "none")
        #expect(pool.idle == ["b"])
        #expect(release(&pool) == "none")
        #expect(pool.open == 1)
        #expect(acquire(&pool, 5).0 == "b")
    }

    @Test func idleConnectionsThatMayNotServeAreClosedAndARetrySkipsThemAndWaitsFirst() {
        var pool = Pool(maximum: 3, maximumIdle: 3)
        for request in 1...3 { _ = acquire(&pool, UInt64(request)) }
        for connection in ["a", "b", "c"] { _ = keep(&pool, connection) }
        // The newest idle first; one that may not serve is to be closed (its place comes back when it has).
        let acquired = acquire(&pool, 4) { $0 != "c" }
        #expect(acquired.0 == "b" && acquired.close == ["c"])
        #expect(pool.open == 3 && pool.idle == ["a"])
        // A retry does not take an idle connection: every place is taken, so it waits, and before
        // those that have not had their turn yet.
        #expect(acquire(&pool, 5, retry: true).0 == "wait")
        #expect(acquire(&pool, 6).0 == "a")
        #expect(acquire(&pool, 7).0 == "wait")
        #expect(acquire(&pool, 8, retry: true).0 == "wait")
        #expect(pool.waiting == [8, 5, 7])
        #expect(release(&pool) == "8 connects")
    }

    @Test func expiredIdleConnectionsAreClosedAndIdleOnesBounded() {
        var pool = Pool(maximum: 4, maximumIdle: 1)
        for request in 1...3 { _ = acquire(&pool, UInt64(request)) }
        #expect(keep(&pool, "old").close.isEmpty)
        let kept = keep(&pool, "new") { $0 == "old" }
        #expect(kept.close == ["old"] && pool.idle == ["new"])
        // Past `maximumIdle`, a kept connection is to be closed.
        #expect(keep(&pool, "third").close == ["third"])
    }

    @Test func aRequestThatGivesUpLeavesTheQueueAndIsNotHandedAnything() {
        var pool = Pool(maximum: 1, maximumIdle: 1)
        for request in 1...3 { _ = acquire(&pool, UInt64(request)) }
        var abandoned = pool.abandon(2)
        #expect(abandoned)
        abandoned = pool.abandon(2)
        #expect(!abandoned, "once")
        abandoned = pool.abandon(1)
        #expect(!abandoned, "a request that never waited")
        #expect(release(&pool) == "3 connects")
        abandoned = pool.abandon(3)
        #expect(!abandoned, "handed a place already: it uses it")
    }

    @Test func answersAndNotificationsGetAConnectionPastTheLimit() {
        var pool = Pool(maximum: 1, maximumIdle: 1)
        #expect(acquire(&pool, 1).0 == "connect")
        #expect(acquire(&pool, 2).0 == "wait")
        #expect(acquire(&pool, 3, beyondLimit: true).0 == "connect")
        #expect(pool.open == 2)
        // The first place given back leaves one open (the limit): the waiting request gets none yet.
        #expect(release(&pool) == "none")
        #expect(release(&pool) == "2 connects")
        #expect(pool.open == 1)
    }

    @Test func shuttingDownClosesIdleConnectionsFailsWaitingRequestsAndKeepsNoneAfterwards() {
        var pool = Pool(maximum: 2, maximumIdle: 2)
        _ = acquire(&pool, 1)
        _ = acquire(&pool, 2)
        _ = keep(&pool, "a")
        let waiting = acquire(&pool, 3) { _ in false }
        #expect(waiting.0 == "wait" && waiting.close == ["a"])
        let (idle, failed) = pool.shutDown()
        #expect(idle.isEmpty && failed == [3] && pool.waiting.isEmpty)
        // A connection whose answer ends afterwards is closed, not kept.
        #expect(keep(&pool, "b").close == ["b"])
        #expect(release(&pool) == "none")
        #expect(pool.open == 1 && pool.idle.isEmpty)
        // A request that comes later still gets a place.
        #expect(acquire(&pool, 4).0 == "connect")
    }
}
