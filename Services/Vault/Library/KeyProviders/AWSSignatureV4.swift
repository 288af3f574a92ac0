import Crypto
import Foundation
import WardenContracts

/// AWS Signature Version 4 for one request: the headers to send (`x-amz-date`, `authorization`,
/// and the session token when there is one).
struct AWSSignatureV4: Sendable {
    let service: String
    let region: String
    let accessKeyID: String
    let secretAccessKey: String
    let sessionToken: String?

    func sign(method: String, url: URL, headers: [String: String], payload: [UInt8], date: Date) -> [String: String] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let timestamp = formatter.string(from: date)
        let day = String(timestamp.prefix(8))
        var all = headers.reduce(into: [String: String]()) { $0[$1.key.lowercased()] = $1.value.trimmingCharacters(in: .whitespaces) }
        all["host"] = url.port.map { "\(url.host!):\($0)" } ?? url.host!
        all["x-amz-date"] = timestamp
        if let sessionToken { all["x-amz-security-token"] = sessionToken }
        let names = all.keys.sorted()
        let canonical = [
            method, url.path.isEmpty ? "/" : url.path, url.query ?? "",
            names.map { "\($0):\(all[$0]!)\n" }.joined(), names.joined(separator: ";"), Self.hex(SHA256.hash(data: payload)),
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = ["AWS4-HMAC-SHA256", timestamp, scope, Self.hex(SHA256.hash(data: Array(canonical.utf8)))].joined(separator: "\n")
        var key = SymmetricKey(data: Array("AWS4\(secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: key))
        all["authorization"] =
            "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope), SignedHeaders=\(names.joined(separator: ";")), Signature=\(signature)"
        all["host"] = nil
        return all
    }

    static func hex(_ bytes: some ContiguousBytes) -> String { LowercaseHex.string(bytes) }
}
