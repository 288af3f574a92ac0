import Foundation
import Logging
import Testing

@testable import WardenServiceKit

@Suite struct JSONLogHandlerTests {
    @Test func oneObjectPerLineWithMetadata() throws {
        let line = try #require(
            JSONLogHandler.render(
                label: "warden.policy",
                level: .info,
                message: "instance ready",
                metadata: ["nats.subject": "warden.policy.health", "level": "spoofed"],
                time: Date(timeIntervalSince1970: 0)
            )
        )
        #expect(line.last == 0x0A)
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: String])
        #expect(object["message"] == "instance ready")
        #expect(object["logger"] == "warden.policy")
        #expect(object["level"] == "info", "metadata cannot overwrite the fixed fields")
        #expect(object["nats.subject"] == "warden.policy.health")
        #expect(object["time"] == "1970-01-01T00:00:00Z")
    }
}
