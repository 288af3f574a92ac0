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
    /// Copies of each entry the NATS cluster keeps (1 on a single server).
    public var replicas: Int = 1
    /// Whether a value can be erased (`erase`): libnats creates buckets that deny deleting
    /// messages, so such a bucket's stream is created here with that allowed.
    public var erasable = false

    public init(name: String, history: UInt8 = 1, ttl: Duration? = nil, replicas: Int = 1, erasable: Bool = false) {
        self.name = name
        self.history = history
        self.ttl = ttl
        self.replicas = replicas
        self.erasable = erasable
    }

    /// The stream behind the bucket, as every NATS client names it.
    public var streamName: String { "KV_\(name)" }
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

    /// Removes the key's current value from the server's storage, overwriting its bytes there
    /// (not just marking it deleted), then purges the key. Only for buckets made `erasable`.
    /// Returns whether there was a value.
    @discardableResult
    public func erase(_ key: String) async throws -> Bool {
        guard let entry = try await get(key) else { return false }
        let handle = self.handle, stream = "KV_\(name)"
        let js = OpaquePointerBox(connection.jetStreamContext)
        try await connection.runBlocking {
            guard let kv = handle.pointer else { throw NATSError(.connectionClosed, "connection closed") }
            var errorCode = jsErrCode(0)
            let erased = js_EraseMsg(js.pointer, stream, entry.revision, nil, &errorCode)
            guard erased == NATS_OK else { throw NATSError(.jetStream, "kv erase \(key): \(jetStreamErrorText(erased, errorCode))") }
            let purged = kvStore_Purge(kv, key, nil)
            guard purged == NATS_OK else { throw natsFailure(purged, "kv purge \(key)") }
        }
        return true
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
    /// Creates the bucket if needed (or, with `create` false, throws `.bucketMissing` when it does
    /// not exist: only for `erasable` buckets) and returns a handle to it.
    public func keyValueBucket(_ spec: KeyValueBucketSpec, create: Bool = true) async throws -> NATSKeyValueBucket {
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
            var status: natsStatus
            if spec.erasable {
                status = js_KeyValue(&kv, js.pointer, spec.name)
                if status == NATS_NOT_FOUND {
                    guard create else { throw NATSError(.bucketMissing, "key-value bucket \(spec.name) does not exist") }
                    try Self.createErasableStream(spec, js: js.pointer)
                    status = js_KeyValue(&kv, js.pointer, spec.name)
                }
            } else {
                config.Replicas = Int32(spec.replicas)
                status = js_CreateKeyValue(&kv, js.pointer, &config)
            }
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

    /// The stream of a key-value bucket as libnats makes it, except that deleting (erasing) a
    /// message is allowed and reads go to the leader. Another replica creating it first is fine.
    private static func createErasableStream(_ spec: KeyValueBucketSpec, js: OpaquePointer) throws {
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        let name = strdup(spec.streamName), subject = strdup("$KV.\(spec.name).>")
        defer {
            free(name)
            free(subject)
        }
        var subjects: [UnsafePointer<CChar>?] = [UnsafePointer(subject)]
        config.Name = UnsafePointer(name)
        config.MaxMsgsPerSubject = Int64(spec.history)
        config.MaxBytes = -1
        config.MaxMsgSize = spec.maxValueSize
        config.MaxAge = spec.ttl?.nanoseconds ?? 0
        config.Duplicates = Duration.seconds(120).nanoseconds
        config.Storage = js_FileStorage
        config.Replicas = Int64(spec.replicas)
        config.Discard = js_DiscardNew
        config.AllowRollup = true
        // Reads from the stream's leader: a replica's direct answer may lag behind a write or an erasure.
        config.AllowDirect = false
        config.DenyDelete = false
        var errorCode = jsErrCode(0)
        let status = subjects.withUnsafeMutableBufferPointer { buffer -> natsStatus in
            config.Subjects = buffer.baseAddress
            config.SubjectsLen = 1
            var info: UnsafeMutablePointer<jsStreamInfo>? = nil
            let status = js_AddStream(&info, js, &config, nil, &errorCode)
            if let info { jsStreamInfo_Destroy(info) }
            config.Subjects = nil
            return status
        }
        guard status == NATS_OK || errorCode == JSStreamNameExistErr else {
            throw NATSError(.jetStream, "key-value bucket \(spec.name): \(jetStreamErrorText(status, errorCode))")
        }
    }
}
