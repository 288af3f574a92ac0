import Foundation
import WardenContracts

/// Reads and writes a connection's records (its client, its grants) as secrets of the org, JSON
/// inside the sealed value.
struct OAuthRecordStore: Sendable {
    let secrets: SecretStore

    func client(org: String, name: String) async throws -> OAuthClientRecord {
        do {
            return try await open(OAuthClientRecord.self, org: org, path: OAuthPaths.client(name)).record
        } catch let error as ServiceError where error.code == .notFound {
            throw ServiceError(.notFound, "org '\(org)' has no OAuth client '\(name)' (add one with: warden oauth client set \(name))")
        }
    }

    /// A grant and the version it was read at (nil when there is none, it was destroyed or disconnected).
    func grant(org: String, path: String) async throws -> (record: OAuthGrantRecord, version: Int)? {
        do {
            let found = try await open(OAuthGrantRecord.self, org: org, path: path)
            return found.record.disconnectedBy == nil ? found : nil
        } catch let error as ServiceError where error.code == .notFound {
            return nil
        }
    }

    @discardableResult
    func store(_ record: some Encodable, org: String, path: String, actor: String) async throws -> SecretMetadata {
        try await secrets.write(SecretWrite(org: org, path: path, value: try Self.encoded(record), actor: actor))
    }

    /// Stores `record` only if the grant is still at `version`: false when a connect, disconnect or
    /// another refresh came first.
    func replace(_ record: OAuthGrantRecord, org: String, path: String, version: Int, actor: String) async throws -> Bool {
        try await secrets.write(SecretWrite(org: org, path: path, value: try Self.encoded(record), actor: actor), replacing: version) != nil
    }

    private func open<Record: Decodable>(_ type: Record.Type, org: String, path: String) async throws -> (record: Record, version: Int) {
        let value = try await secrets.read(SecretReference(org: org, path: path))
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let data = Data(base64Encoded: value.value), let record = try? decoder.decode(Record.self, from: data) else {
            throw ServiceError(.internal, "secret '\(path)' of org '\(org)' is not an OAuth record")
        }
        return (record, value.version)
    }

    private static func encoded(_ record: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(record).base64EncodedString()
    }
}
