import Crypto
import Foundation

/// How Warden signs what it posts to an org's endpoints (approval notices, audit sinks):
/// `Warden-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
/// `Warden-Timestamp` sent beside it. A receiver recomputes it to trust a delivery and checks that
/// the timestamp is recent to refuse replays.
package enum WebhookSignature {
    package static func v1(secret: String, timestamp: String, body: Data) -> String {
        var signed = Data("\(timestamp).".utf8)
        signed.append(body)
        return HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8))).map { String(format: "%02x", $0) }.joined()
    }

    /// The headers of one signed delivery.
    package static func headers(secret: String, body: Data, event: String, delivery: String, now: Date = Date()) -> [(String, String)] {
        let timestamp = String(Int(now.timeIntervalSince1970))
        return [
            ("Warden-Delivery", delivery), ("Warden-Event", event), ("Warden-Timestamp", timestamp),
            ("Warden-Signature", "v1=" + v1(secret: secret, timestamp: timestamp, body: body)),
        ]
    }
}
