import Foundation
import Testing
import WardenContracts

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

    @Test func auditEventsGetTimeOrderedIDs() throws {
        let event = AuditEvent(service: .vault, action: "secret.write", outcome: .success, org: "acme", actor: "user:u", target: "t", detail: "")
        #expect(Array(event.id)[14] == "7" && UUID(uuidString: event.id) != nil, "\(event.id)")
    }
}
