import Metrics
import Synchronization

/// Ended spans waiting for export. Appending takes a lock and never waits or wakes anything; past
/// `capacity` spans are dropped (and counted), so a receiver that is down costs memory up to a bound.
package final class SpanBuffer: Sendable {
    let capacity: Int
    private let spans = Mutex<[FinishedSpan]>([])
    private let lastDrained = Atomic<Int>(0)

    package init(capacity: Int = 65_536) {
        self.capacity = capacity
    }

    func append(_ span: FinishedSpan) {
        let kept = spans.withLock { spans -> Bool in
            guard spans.count < capacity else { return false }
            spans.append(span)
            return true
        }
        if !kept { Counter(label: "warden_trace_spans_dropped_total").increment() }
    }

    /// Everything buffered, emptying the buffer.
    func drain() -> [FinishedSpan] {
        // The next buffer holds as many as the last, so appends under the lock rarely grow it; it
        // is allocated before the lock is taken.
        var next: [FinishedSpan] = []
        next.reserveCapacity(lastDrained.load(ordering: .relaxed))
        let drained = spans.withLock { spans in
            swap(&spans, &next)
            return next
        }
        lastDrained.store(min(drained.count, capacity), ordering: .relaxed)
        return drained
    }
}
