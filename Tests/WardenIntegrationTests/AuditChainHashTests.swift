import Testing
import WardenAuditChain

/// The chain's hash is a format: records stored by earlier versions must verify (no I/O).
@Suite struct AuditChainHashTests {
    @Test func aRecordsHashIsSHA256OfPreviousPositionAndBodyALineEach() {
        // sha256("000…0\n1\n{\"id\":\"é\"}"), computed independently.
        #expect(
            AuditChain.hash(previous: AuditChain.genesis, position: 1, body: #"{"id":"é"}"#)
                == "9532ef8b361cdecb72abd4da192ae5ea028f91ec862ef7d22decc493d2635f47")
    }
}
