import Synchronization

/// Trace and span ids: SplitMix64 over one atomic counter that starts at a
/// random value. One atomic add an id, where the system generator costs a `getrandom` system call
/// (measured: about half a percent of a traced gateway's CPU). Each output is a bijection of a
/// distinct counter value, so a process never repeats a span id before 2^64 of them; ids are
/// uniformly spread for sampling by trace id, and not secrets (W3C trace context asks ids to be
/// unique and random-looking, not unpredictable). Sampling draws from the system generator instead:
/// whoever sees ids must not learn which requests will be recorded.
enum SpanIDGenerator {
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    static func next() -> UInt64 {
        var z = counter.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
