/// The instances of one server's pool and the calls waiting for one: a value type whose events
/// return the actions to perform. No I/O, no clock of its own (times come with the events), no
/// locks: `DownstreamPool` owns one behind a lock and performs the actions outside it.
///
/// A call goes to the ready instance with the fewest calls in flight; when that one is busy too and
/// the cap allows, another instance starts for the calls that follow. With no ready instance, a call
/// waits for one that is starting, or starts one; it fails at once when every instance allowed is
/// failing (restarting with backoff), and when the instance it waited for fails.
struct PoolStateMachine<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    enum InstanceState: Sendable, Equatable {
        case starting
        case ready
        /// Ended or failed to start; its supervisor restarts it with backoff.
        case failed(String?)
    }

    struct Instance: Sendable {
        var state: InstanceState = .starting
        var inFlight = 0
        var lastUsed: Instant
    }

    /// Who waits: a call (which takes the instance it gets) or a listing that only needs the catalogue.
    enum Waiter: Sendable, Equatable {
        case call
        case warmUp
    }

    enum Failure: Error, Sendable, Equatable {
        /// The gateway is stopping.
        case stopping
        /// Every instance the cap allows is failing; the detail says why (never a secret).
        case notReady(String?)
        /// The instance this call waited for failed to start.
        case didNotStart(String?)
        /// No instance became ready in time.
        case timedOut
    }

    enum Action: Sendable, Equatable {
        case startInstance(Int)
        case stopInstances([Int])
        /// The waiter's instance (for a warm-up: any ready one).
        case resume(waiter: Int, instance: Int)
        case fail(waiter: Int, Failure)
    }

    let policy: PoolPolicy
    private(set) var instances: [Int: Instance] = [:]
    /// Waiters in arrival order.
    private(set) var waiting: [(id: Int, kind: Waiter)] = []
    private(set) var closed = false
    private var nextInstance = 0

    init(policy: PoolPolicy) {
        self.policy = policy
    }

    /// Whether the catalogue may be known without starting anything.
    var isEmpty: Bool { instances.isEmpty }

    // MARK: Events

    /// At boot: the instance that always runs, if the policy wants one.
    mutating func boot(now: Instant) -> [Action] {
        guard policy.startAtBoot, instances.isEmpty, !closed else { return [] }
        return [.startInstance(add(now: now))]
    }

    /// A call wants an instance.
    mutating func call(_ waiter: Int, now: Instant) -> [Action] {
        if closed { return [.fail(waiter: waiter, .stopping)] }
        if let best = leastBusyReady() {
            var actions: [Action] = []
            if instances[best]!.inFlight > 0 && instances.count < policy.maximumInstances {
                // Everyone is busy: add capacity for the next calls, serve this one now.
                actions.append(.startInstance(add(now: now)))
            }
            take(best, now: now)
            actions.append(.resume(waiter: waiter, instance: best))
            return actions
        }
        if instances.values.contains(where: { $0.state == .starting }) {
            waiting.append((waiter, .call))
            return []
        }
        if instances.count < policy.maximumInstances {
            waiting.append((waiter, .call))
            return [.startInstance(add(now: now))]
        }
        return [.fail(waiter: waiter, .notReady(failureDetail))]
    }

    /// A listing wants the catalogue of a server never seen: it waits for a first instance.
    mutating func warmUp(_ waiter: Int, now: Instant) -> [Action] {
        if closed { return [.fail(waiter: waiter, .stopping)] }
        if let ready = leastBusyReady() { return [.resume(waiter: waiter, instance: ready)] }
        waiting.append((waiter, .warmUp))
        if instances.isEmpty { return [.startInstance(add(now: now))] }
        return []
    }

    /// An instance finished its handshake: the waiting calls go to the ready instances.
    mutating func instanceReady(_ number: Int, now: Instant) -> [Action] {
        guard instances[number] != nil else { return [] }
        instances[number]!.state = .ready
        var actions: [Action] = []
        for waiter in waiting {
            guard let best = leastBusyReady() else { break }
            if waiter.kind == .call { take(best, now: now) }
            actions.append(.resume(waiter: waiter.id, instance: best))
        }
        waiting.removeAll()
        return actions
    }

    /// An instance ended or could not start (its supervisor restarts it with backoff). Waiters fail
    /// when nothing else is starting for them.
    mutating func instanceFailed(_ number: Int, detail: String?) -> [Action] {
        guard instances[number] != nil else { return [] }
        instances[number]!.state = .failed(detail)
        guard !instances.values.contains(where: { $0.state == .starting }) else { return [] }
        defer { waiting.removeAll() }
        return waiting.map { .fail(waiter: $0.id, .didNotStart(detail)) }
    }

    /// Its supervisor is starting it again.
    mutating func instanceStarting(_ number: Int) {
        instances[number]?.state = .starting
    }

    /// A call that got `number` is done.
    mutating func callFinished(on number: Int, now: Instant) {
        guard instances[number] != nil else { return }
        instances[number]!.inFlight -= 1
        instances[number]!.lastUsed = now
    }

    /// A waiter gave up (its deadline passed, or its client went away).
    mutating func waiterTimedOut(_ waiter: Int) -> [Action] {
        guard let index = waiting.firstIndex(where: { $0.id == waiter }) else { return [] }
        waiting.remove(at: index)
        return [.fail(waiter: waiter, .timedOut)]
    }

    /// Stops ready or failing instances idle for at least the policy's idle timeout (those idle longest
    /// first), keeping the minimum.
    mutating func reapIdle(now: Instant) -> [Action] {
        guard let idleTimeout = policy.idleTimeout else { return [] }
        var removable = instances.count - policy.minimumInstances
        var stopped: [Int] = []
        for (number, instance) in instances.sorted(by: { $0.value.lastUsed < $1.value.lastUsed }) where removable > 0 {
            // A starting instance is not idle: callers may be waiting for it, however long it takes.
            guard instance.state != .starting, instance.inFlight == 0, instance.lastUsed.duration(to: now) >= idleTimeout else { continue }
            instances[number] = nil
            stopped.append(number)
            removable -= 1
        }
        return stopped.isEmpty ? [] : [.stopInstances(stopped.sorted())]
    }

    /// The gateway stops: every waiter fails, every instance stops.
    mutating func shutdown() -> [Action] {
        closed = true
        var actions: [Action] = waiting.map { .fail(waiter: $0.id, .stopping) }
        waiting.removeAll()
        if !instances.isEmpty { actions.append(.stopInstances(instances.keys.sorted())) }
        instances.removeAll()
        return actions
    }

    // MARK: Helpers

    private mutating func add(now: Instant) -> Int {
        nextInstance += 1
        instances[nextInstance] = Instance(lastUsed: now)
        return nextInstance
    }

    private mutating func take(_ number: Int, now: Instant) {
        instances[number]!.inFlight += 1
        instances[number]!.lastUsed = now
    }

    private func leastBusyReady() -> Int? {
        instances.filter { $0.value.state == .ready }.min { ($0.value.inFlight, $0.key) < ($1.value.inFlight, $1.key) }?.key
    }

    private var failureDetail: String? {
        for (_, instance) in instances.sorted(by: { $0.key < $1.key }) {
            if case .failed(let detail) = instance.state { return detail }
        }
        return nil
    }
}
