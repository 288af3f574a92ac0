import Foundation
import Testing

@testable import WardenContracts

@Suite struct UniqueIDTests {
    /// The milliseconds an id says it was made in (its first 48 bits).
    static func milliseconds(of id: String) -> UInt64? {
        UInt64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16)
    }

    @Test func idsAreLowercaseUUIDsOfVersion7() {
        let id = UniqueID.make()
        #expect(id.count == 36 && UUID(uuidString: id) != nil && id == id.lowercased(), "\(id)")
        let characters = Array(id)
        #expect(characters[14] == "7", "version 7: \(id)")
        #expect("89ab".contains(characters[19]), "RFC 9562 variant: \(id)")
    }

    @Test func idsMadeInTheSameMillisecondNeverRepeat() {
        var seen = Set<String>()
        for _ in 0..<100_000 { seen.insert(UniqueID.make(unixMilliseconds: 1_796_083_200_000)) }
        #expect(seen.count == 100_000)
    }

    @Test func idsSortByTheMillisecondTheyWereMadeIn() {
        let times: [UInt64] = [0, 1, 15, 16, 255, 256, 65_535, 65_536, 1_796_083_200_000, 1_796_083_200_001, 1 << 47, (1 << 48) - 1]
        let ids = times.map { UniqueID.make(unixMilliseconds: $0) }
        #expect(ids.map(Self.milliseconds) == times)
        #expect(ids == ids.sorted(), "byte order (an index's order under COLLATE \"C\" or any UTF-8 locale on hex) is time order")
    }

    @Test func anIDCarriesTheTimeItWasMadeAt() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1_000)
        let id = UniqueID.make()
        let after = UInt64(Date().timeIntervalSince1970 * 1_000)
        let made = try #require(Self.milliseconds(of: id))
        #expect((before...after).contains(made), "\(id)")
    }

    @Test func theLayoutKeepsTheTimeAndEveryBitOfTheCounterAndSalt() {
        let id = UniqueID.format(unixMilliseconds: 0x0123_4567_89AB, mixed: 0xFEDC_BA98_7654_3210, salt: 0x2A5)
        // time · 7 · the counter's top 12 bits | 0b10 · its low 52 bits · 10 bits of salt
        #expect(id == "01234567-89ab-7fed-b2ea-61d950c842a5")
    }

    @Test func auditEventsGetIDsMadeFromTheirOwnTime() throws {
        let time = Date(timeIntervalSince1970: 1_700_000_000.5)
        let event = AuditEvent(
            time: time, service: .vault, action: "secret.write", outcome: .success, org: "acme", actor: "user:u", target: "t", detail: "")
        #expect(Array(event.id)[14] == "7" && UUID(uuidString: event.id) != nil, "\(event.id)")
        #expect(Self.milliseconds(of: event.id) == 1_700_000_000_500, "an event recorded late still sorts with its time: \(event.id)")
        let given = AuditEvent(id: "e-1", service: .vault, action: "a", outcome: .success, org: nil, actor: "a", target: "t", detail: "")
        #expect(given.id == "e-1")
    }

    @Test func timesOutsideWhatAnIDHoldsAreClampedNotTrappedOn() {
        #expect(Self.milliseconds(of: UniqueID.make(at: Date(timeIntervalSince1970: -5))) == 0)
        #expect(Self.milliseconds(of: UniqueID.make(at: Date(timeIntervalSince1970: -.infinity))) == 0)
        #expect(Self.milliseconds(of: UniqueID.make(at: Date(timeIntervalSince1970: .nan))) == 0)
        #expect(Self.milliseconds(of: UniqueID.make(at: Date(timeIntervalSince1970: 1e12))) == (1 << 48) - 1)
        #expect(Self.milliseconds(of: UniqueID.make(at: Date(timeIntervalSince1970: .infinity))) == (1 << 48) - 1)
    }
}
