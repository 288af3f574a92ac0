import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The root key in AWS KMS: org keys are wrapped with `Encrypt` and unwrapped with `Decrypt` by a
/// KMS key that never leaves KMS; the context binds each wrapped key (KMS's encryption context).
/// Requests are signed with Signature Version 4.
///
/// Configured with `WARDEN_VAULT_AWS_KMS_KEY_ID` (key id, ARN or alias), `WARDEN_VAULT_AWS_REGION`
/// (else `AWS_REGION`), `WARDEN_VAULT_AWS_KMS_ENDPOINT` (default `https://kms.<region>.amazonaws.com`)
/// and the standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
package struct AWSKMSKeyProvider: RootKeyProvider {
    package let kind = "aws-kms"
    package let keyID: String
    let kmsKeyID: String
    let signer: AWSSignatureV4
    let endpoint: URL

    package init(keyID: String, region: String, endpoint: String?, accessKeyID: String, secretAccessKey: String, sessionToken: String?)
        throws(KeyProviderError)
    {
        let address = endpoint ?? "https://kms.\(region).amazonaws.com"
        guard let url = URL(string: address), let scheme = url.scheme, ["https", "http"].contains(scheme), url.host != nil else {
            throw KeyProviderError(provider: "aws-kms", "the KMS endpoint '\(address)' is not an http(s) URL")
        }
        guard scheme == "https" || ["127.0.0.1", "localhost", "::1"].contains(url.host ?? "") else {
            throw KeyProviderError(provider: "aws-kms", "the KMS endpoint must use https (http only on loopback, for a local emulator)")
        }
        self.kmsKeyID = keyID
        self.keyID = "aws-kms:\(keyID)"
        self.endpoint = url
        signer = AWSSignatureV4(
            service: "kms", region: region, accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken)
    }

    package func wrap(_ key: [UInt8], context: [UInt8]) async throws -> [UInt8] {
        let answer = try await call(
            "Encrypt", ["KeyId": kmsKeyID, "Plaintext": Data(key).base64EncodedString(), "EncryptionContext": Self.encryptionContext(context)])
        guard let blob = answer["CiphertextBlob"] as? String, let bytes = Data(base64Encoded: blob) else {
            throw KeyProviderError(provider: kind, "KMS Encrypt answered without a ciphertext")
        }
        return Array(bytes)
    }

    package func unwrap(_ wrapped: [UInt8], context: [UInt8]) async throws -> [UInt8] {
        let answer = try await call(
            "Decrypt",
            ["KeyId": kmsKeyID, "CiphertextBlob": Data(wrapped).base64EncodedString(), "EncryptionContext": Self.encryptionContext(context)])
        guard let plaintext = answer["Plaintext"] as? String, let bytes = Data(base64Encoded: plaintext) else {
            throw KeyProviderError(provider: kind, "KMS Decrypt answered without a plaintext")
        }
        return Array(bytes)
    }

    /// KMS takes string pairs: the context, base64 (it holds NUL separators).
    static func encryptionContext(_ context: [UInt8]) -> [String: String] { ["warden": Data(context).base64EncodedString()] }

    private func call(_ action: String, _ body: [String: Any]) async throws -> [String: Any] {
        let payload = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = .POST
        let headers = signer.sign(
            method: "POST", url: endpoint,
            headers: ["content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.\(action)"], payload: Array(payload), date: Date())
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: payload))
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        } catch {
            throw KeyProviderError(provider: kind, "cannot reach KMS at \(endpoint.absoluteString): \(error)")
        }
        let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard response.status.code == 200 else {
            // KMS errors name a type and a message; neither carries key material.
            let type = (object["__type"] as? String).map { $0.split(separator: "#").last.map(String.init) ?? $0 } ?? "HTTP \(response.status.code)"
            let message = (object["message"] as? String) ?? (object["Message"] as? String) ?? ""
            throw KeyProviderError(provider: kind, "KMS \(action) was refused: \(type)\(message.isEmpty ? "" : " (\(message))")")
        }
        return object
    }
}
