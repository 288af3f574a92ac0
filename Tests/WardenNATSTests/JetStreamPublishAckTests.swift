import Foundation
import Testing
import WardenNATS

/// A publish's reply (nats-server writes `{"stream":"AUDIT", "seq":42}`, with spaces after commas;
/// the integration tests publish to a real one).
@Suite struct JetStreamPublishAckTests {
    func ack(_ text: String) -> JetStreamPublishAck? { JetStreamPublishAck(reply: Data(text.utf8)) }

    @Test func anAckNamesItsStreamAndSequence() {
        #expect(ack(#"{"stream":"AUDIT","seq":42}"#) == JetStreamPublishAck(stream: "AUDIT", sequence: 42))
        #expect(ack(#"{"stream":"AUDIT", "seq":42}"#) == JetStreamPublishAck(stream: "AUDIT", sequence: 42))
        #expect(ack(#"{"stream":"AUDIT","domain":"hub","seq":18446744073709551615}"#)?.sequence == UInt64.max)
    }

    @Test func aRepeatedMessageIDIsADuplicate() {
        #expect(ack(#"{"stream":"AUDIT","seq":7,"duplicate":true}"#) == JetStreamPublishAck(stream: "AUDIT", sequence: 7, duplicate: true))
        #expect(ack(#"{"stream":"AUDIT", "seq":7, "duplicate": true}"#)?.duplicate == true)
        #expect(ack(#"{"stream":"AUDIT","seq":7,"duplicate":false}"#)?.duplicate == false)
        #expect(ack(#"{"stream":"AUDIT","seq":7,"duplicate":null}"#)?.duplicate == false)
    }

    /// An API error, or anything else, is not an ack (the publish then fails with the server's words).
    /// A stream that fails to store a message names itself beside the error, with sequence 0: taken
    /// for an ack, its audit batch would be counted stored and dropped from the spool.
    @Test func anythingElseIsNotAnAck() {
        for reply in [
            #"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
            #"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"AUDIT","seq":0}"#,
            #"{"stream":"AUDIT", "seq":0, "error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}"#,
            #"{"stream":"AUDIT"}"#, #"{"seq":3}"#, #"{"stream":7,"seq":3}"#, #"{"stream":"AUDIT","seq":-1}"#,
            #"{"stream":"AUDIT","seq":1.5}"#, #"{"stream":"AUDIT","seq":"3"}"#, #"{"stream":"AUDIT","seq":3,"duplicate":"yes"}"#,
            #"[1]"#, "", "not json", #"{"stream":"AUDIT","seq":3"#,
        ] {
            #expect(ack(reply) == nil, "\(reply)")
        }
    }
}
