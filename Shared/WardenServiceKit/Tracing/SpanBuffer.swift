import Metrics
import Synchronization

/// Ended spans waiting for export, already encoded: appending writes the span's OTLP protobuf (a
/// `ScopeSpans.spans` entry) under a lock and never waits or wakes anything, so no span's strings
/// and fields are kept until the exporter runs, nor freed on its thread. Past `capacity` spans are
/// dropped (and counted), so a receiver that is down costs memory up to a bound.
package final class SpanBuffer: Sendable {
    let capacity: Int
    /// Spans in one export request at most.
    let batchSize: Int

    private struct Pending: ~Copyable {
        /// Where each span is written (back to front), before it is copied onto the end of `entries`.
        var scratch = ProtobufWriter()
        var entries: [UInt8] = []
        var count = 0
        var batchStarts: [Int] = []
    }

    private let pending = Mutex(Pending())
    private let lastDrainedBytes = Atomic<Int>(0)

    package init(capacity: Int = 65_536, batchSize: Int = 2_048) {
        precondition(capacity > 0 && batchSize > 0, "a span buffer holds at least one span a batch")
        self.capacity = capacity
        self.batchSize = batchSize
    }

    func append(_ span: FinishedSpan) {
        let kept = pending.withLock { pending -> Bool in
            guard pending.count < capacity else { return false }
            if pending.count > 0 && pending.count % batchSize == 0 { pending.batchStarts.append(pending.entries.count) }
            pending.scratch.reset()
            pending.scratch.message(2) { OTLPEncoder.encode(span, into: &$0) }
            pending.scratch.withBytes { pending.entries.append(contentsOf: $0) }
            pending.count += 1
            return true
        }
        if !kept { Counter(label: "warden_trace_spans_dropped_total").increment() }
    }

    /// Everything buffered, emptying the buffer.
    func drain() -> EncodedSpans {
        // The next buffer holds as much as the last, so appends under the lock rarely grow it; it
        // is allocated before the lock is taken.
        var next: [UInt8] = []
        next.reserveCapacity(lastDrainedBytes.load(ordering: .relaxed))
        let (count, batchStarts) = pending.withLock { pending in
            swap(&pending.entries, &next)
            defer {
                pending.count = 0
                pending.batchStarts = []
            }
            return (pending.count, pending.batchStarts)
        }
        lastDrainedBytes.store(next.count, ordering: .relaxed)
        return EncodedSpans(entries: next, count: count, batchStarts: batchStarts, batchSize: batchSize)
    }
}

/// Spans as OTLP's `ScopeSpans.spans` entries, one after another (each a tag, a length and a `Span`),
/// in batches of at most the buffer's `batchSize` spans.
struct EncodedSpans {
    var entries: [UInt8]
    var count: Int
    /// Where each batch after the first starts in `entries`; every batch but the last is full.
    var batchStarts: [Int]
    var batchSize: Int

    var isEmpty: Bool { count == 0 }

    var batches: [(entries: ArraySlice<UInt8>, spans: Int)] {
        guard count > 0 else { return [] }
        let bounds = [0] + batchStarts + [entries.count]
        return (0..<bounds.count - 1).map { index in
            let spans = index < batchStarts.count ? batchSize : count - batchSize * batchStarts.count
            return (entries[bounds[index]..<bounds[index + 1]], spans)
        }
    }
}
