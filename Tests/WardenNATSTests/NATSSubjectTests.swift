import Testing
import WardenNATS

@Suite struct NATSSubjectTests {
    @Test(arguments: ["warden.policy.decide", "a", "_INBOX.abc.1", "$JS.API.INFO"])
    func validPublishSubjects(_ subject: String) {
        #expect(NATSSubject.isValidPublishSubject(subject))
    }

    @Test(arguments: ["", "a..b", ".a", "a.", "a b", "a.*", "a.>", "a.b*"])
    func invalidPublishSubjects(_ subject: String) {
        #expect(!NATSSubject.isValidPublishSubject(subject))
    }

    @Test func wildcardsOnlyWhereAllowed() {
        #expect(NATSSubject.isValidSubscribeSubject("warden.*.health"))
        #expect(NATSSubject.isValidSubscribeSubject("warden.heartbeat.>"))
        #expect(!NATSSubject.isValidSubscribeSubject("warden.>.x"))
        #expect(!NATSSubject.isValidSubscribeSubject("warden.a*"))
    }

    @Test func matching() {
        #expect(NATSSubject.matches("warden.heartbeat.policy", pattern: "warden.heartbeat.>"))
        #expect(NATSSubject.matches("warden.heartbeat.policy", pattern: "warden.*.policy"))
        #expect(!NATSSubject.matches("warden.heartbeat", pattern: "warden.heartbeat.>"))
        #expect(!NATSSubject.matches("warden.heartbeat.policy.x", pattern: "warden.*.policy"))
        #expect(NATSSubject.matches("a.b", pattern: "a.b"))
        #expect(!NATSSubject.matches("a.b", pattern: "a.c"))
    }
}
