import CNATS
import Foundation
import Synchronization

/// A NATS key-value bucket to create at start-up.
public struct KeyValueBucketSpec: Sendable, Equatable {
    public var name: String
    /// Revisions kept per key (1–64).
    public var history: UInt8 = 1
    /// Entries older than this expire (nil: never).
    public var ttl: Duration?
    public var maxValueSize: Int32 = 1_048_576

    public init(name: String, history: UInt8 = 1, ttl: Duration? = nil) {
        self.name = name
        self.history = history
        self.ttl = ttl
    }
}

/// One entry read from a bucket.
public struct KeyValueEntry: Sendable, Equatable {
    public var key: String
    public var value: Data
    public var revision: UInt64
}

/// A bucket handle owned by the connection (destroyed when it closes).
final class KeyValueHandle: Sendable {
    private let store: Mutex<OpaquePointerBox?>

    init(_ pointer: OpaquePointer) { store = Mutex(OpaquePointerBox(pointer)) }

    var pointer: OpaquePointer? { store.withLock { $0?.pointer } }

    func destroy() {
        if let box = store.withLock({ value -> OpaquePointerBox? in
            defer { value = nil }; return value
        }) {
            kvStore_Destroy(box.pointer)
        }
    }
}

/// Access to one key-value bucket. Every call runs libnats's blocking KV API on the connection's
/// private thread pool, never on a cooperative thread.
public struct NATSKeyValueBucket: Sendable {
    public let name: String
    let connection: NATSConnection
    let handle: KeyValueHandle

    /// The current value, or nil if the key does not exist (or was deleted).
    public func get(_ key: String) async throws -> KeyValueEntry? {
        let handle = self.handle
        return try await connection.runBlocking { () throws -> KeyValueEntry? in
            guard let kv = handle.pointer else { throw NATSError(.connectionClosed, "connection closed") }
            var entry: OpaquePointer? = nil
            let status = kvStore_Get(&entry, kv, key)
            if status == NATS_NOT_FOUND { return nil }
            guard status == NATS_OK, let entry else { throw natsFailure(status, "kv get \(key)") }
            defer { kvEntry_Destroy(entry) }
            let length = Int(kvEntry_ValueLen(entry))
            let value = length > 0 ? Data(bytes: kvEntry_Value(entry), count: length) : Data()
            return KeyValueEntry(key: key, value: value, revision: kvEntry_Revision(entry))
        }
    }

    /// Stores a value; returns its revision.
    @discardableResult
    public func put(_ key: String, _ value: Data) async throws -> UInt64 {
        try await write(key, value, mode: .put)
    }

    /// Stores a value only if the key does not exist; throws `.keyConflict` otherwise.
    @discardableResult
    public func create(_ key: String, _ value: Data) async throws -> UInt64 {
        try await write(key, value, mode: .create)
    }

    /// Stores a value only if the key's current revision is `revision` (optimistic concurrency).
    @discardableResult
    public func update(_ key: String, _ value: Data, expectedRevision revision: UInt64) async throws -> UInt64 {
        try await write(key, value, mode: .update(revision))
    }

    /// Deletes a key (a tombstone; `get` then returns nil).
    public func delete(_ key: String) async throws {
        let handle = self.handle
        try await connection.runBlocking {
            guard let kv = handle.pointer else { throw NATSError(.connectionClosed, "connection closed") }
            let status = kvStore_Delete(kv, key)
            guard status == NATS_OK else { throw natsFailure(status, "kv delete \(key)") }
        }
    }

    private enum WriteMode: Sendable { case put, create, update(UInt64) }

    private func write(_ key: String, _ value: Data, mode: WriteMode) async throws -> UInt64 {
        let handle = self.handle
        return try await connection.runBlocking {
            guard let kv = handle.pointer else { throw NATSError(.connectionClosed, "connection closed") }
            var revision: UInt64 = 0
            let status = value.withUnsafeBytes { bytes -> natsStatus in
                let length = Int32(bytes.count)
                switch mode {
                case .put: return kvStore_Put(&revision, kv, key, bytes.baseAddress, length)
                case .create: return kvStore_Create(&revision, kv, key, bytes.baseAddress, length)
                case .update(let last): return kvStore_Update(&revision, kv, key, bytes.baseAddress, length, last)
                }
            }
            guard status == NATS_OK else {
                // A failed create/update from the server is "wrong last sequence": another writer won.
                if case .put = mode {} else if status == NATS_ERR { throw NATSError(.keyConflict, "kv write \(key): revision conflict") }
                throw natsFailure(status, "kv write \(key)")
            }
            return revision
        }
    }
}

extension NATSConnection {
    /// Creates the bucket if needed and returns a handle to it.
    public func keyValueBucket(_ spec: KeyValueBucketSpec) async throws -> NATSKeyValueBucket {
        if let existing = buckets.withLock({ $0[spec.name] }) {
            return NATSKeyValueBucket(name: spec.name, connection: self, handle: existing)
        }
        let js = OpaquePointerBox(jetStreamContext)
        let pointer = try await runBlocking { () throws -> OpaquePointerBox in
            var config = kvConfig()
            kvConfig_Init(&config)
            let name = strdup(spec.name)
            defer { free(name) }
            config.Bucket = UnsafePointer(name)
            config.History = spec.history
            config.TTL = spec.ttl?.nanoseconds ?? 0
            config.MaxValueSize = spec.maxValueSize
            config.StorageType = js_FileStorage
            var kv: OpaquePointer? = nil
            var status = js_CreateKeyValue(&kv, js.pointer, &config)
            if status != NATS_OK {
                // Another replica created it first, or it exists from a previous run: bind to it.
                status = js_KeyValue(&kv, js.pointer, spec.name)
            }
            guard status == NATS_OK, let kv else {
                throw NATSError(.jetStream, "key-value bucket \(spec.name): \(jetStreamErrorText(status, jsErrCode(0)))")
            }
            return OpaquePointerBox(kv)
        }
        let handle = buckets.withLock { buckets -> KeyValueHandle in
            if let existing = buckets[spec.name] {
                kvStore_Destroy(pointer.pointer)
                return existing
            }
            let handle = KeyValueHandle(pointer.pointer)
            buckets[spec.name] = handle
            return handle
        }
        return NATSKeyValueBucket(name: spec.name, connection: self, handle: handle)
    }
}
