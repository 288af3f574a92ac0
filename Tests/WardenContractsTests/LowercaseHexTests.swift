import Foundation
import Testing

@testable import WardenContracts

struct LowercaseHexTests {
    @Test func everyByteIsTwoLowercaseDigits() {
        #expect(LowercaseHex.string([0x00, 0x0F, 0xF0, 0xFF, 0x5A] as [UInt8]) == "000ff0ff5a")
        #expect(LowercaseHex.string([UInt8]()) == "")
        #expect(LowercaseHex.string((0...255).map { UInt8($0) }) == (0...255).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
        #expect(LowercaseHex.string(Data([0xAB, 0x01])) == "ab01", "any contiguous bytes, read in place")
    }
}
