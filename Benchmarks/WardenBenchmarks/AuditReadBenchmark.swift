import ArgumentParser
import Foundation
import WardenContracts

/// What reading one audit event costs the audit service: Foundation's `JSONDecoder` (Codable) and
/// `AuditEventReader`, side by side in one process over the same lines (events shaped like the
/// gateway's, written by `AuditJSON` as the gateway writes them), in alternating rounds.
struct AuditReadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit-read", abstract: "Audit event lines read by Codable and by hand.")

    @Option var events = 20_000
    @Option var rounds = 5

    func run() async throws {
        let lines: [Data] = (0..<events).map { index in
            var line: [UInt8] = []
            AuditJSON.write(AuditBenchmark.event(org: "org-\(index % 4)", index: index), to: &line)
            return Data(line)
        }
        let decoder = EnvelopeCoding.decoder()
        let clock = ContinuousClock()
        var codable: [Double] = []
        var byHand: [Double] = []
        for round in 1...max(1, rounds) {
            var start = clock.now
            for line in lines { _ = try decoder.decode(AuditEvent.self, from: line) }
            codable.append((clock.now - start).seconds / Double(events) * 1e6)
            start = clock.now
            for line in lines { _ = try AuditEventReader.event(from: line) }
            byHand.append((clock.now - start).seconds / Double(events) * 1e6)
            print(String(format: "round %d: Codable %.2f µs an event, AuditEventReader %.2f µs", round, codable.last!, byHand.last!))
        }
        let medians = (codable.sorted()[codable.count / 2], byHand.sorted()[byHand.count / 2])
        print(
            String(
                format:
                    "reading an audit event (%d bytes on average): Codable %.2f µs, AuditEventReader %.2f µs (medians of %d rounds; %.1f× faster)",
                lines.map(\.count).reduce(0, +) / events, medians.0, medians.1, codable.count, medians.0 / medians.1))
    }
}
