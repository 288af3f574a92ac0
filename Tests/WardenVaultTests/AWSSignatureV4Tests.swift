import Foundation
import Testing

@testable import WardenVault

/// Signature Version 4 against a signature botocore computed for the same request.
@Suite struct AWSSignatureV4Tests {
    @Test func aKMSRequestIsSignedAsBotocoreSignsIt() throws {
        let signer = AWSSignatureV4(
            service: "kms", region: "us-east-1", accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            sessionToken: nil)
        let headers = signer.sign(
            method: "POST", url: try #require(URL(string: "http://127.0.0.1:4566/")),
            headers: ["content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.Encrypt"], payload: Array(#"{"KeyId":"k"}"#.utf8),
            date: Date(timeIntervalSince1970: 1_795_911_066))
        #expect(headers["x-amz-date"] == "20261129T001106Z")
        #expect(
            headers["authorization"]
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=007c630220fdf2c3b4bd263b544c6fbfa59e9fc24d1109e216548331a6a646e3"
        )
        #expect(headers["host"] == nil, "the HTTP client sets Host itself")
    }
}
