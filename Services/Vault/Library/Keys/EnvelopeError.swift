/// A sealed record does not open: altered, moved to another record, version or org, or sealed
/// under another key. Names the record, nothing else.
package struct EnvelopeError: Error, CustomStringConvertible {
    package var record: String
    package var description: String { "\(record) cannot be opened: its ciphertext was altered or does not belong to it" }
}
