import ArgumentParser
import Foundation
import Logging
import WardenContracts
import WardenGateway
import WardenMCP
import WardenNATS
import WardenServiceKit

/// Credentials at execution time, against a running vault: stores the secret the proxy benchmark's
/// credential servers refer to, then measures resolution with a cold cache (every call asks the
/// vault, as after a change) and what the leak guard costs per KiB of response.
struct CredentialBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials", abstract: "Secret resolution with a cold cache, and the leak guard's cost per KiB.")

    /// The shared secret `bench-cred` and `benchhttp-cred` refer to (the server checks nothing).
    static let path = "bench/key"
    static let value = "sk-bench-0f1e2d3c4b5a69788796a5b4c3d2e1f0"

    @Option var url: String?
    @Option(help: "Sequential resolutions measured.") var resolutions = 2_000

    func run() async throws {
        if let url { try await resolution(url) }
        leakGuard()
    }

    func resolution(_ url: String) async throws {
        let connection = try await BenchSupport.connect(url, name: "bench-credentials", inboxScope: "gateway")
        defer { connection.close() }
        let client = ServiceClient(bus: connection, caller: "gateway/bench")
        _ = try await client.call(
            SecretEndpoints.write,
            SecretWrite(org: SecretReference.sharedOrg, path: Self.path, value: Data(Self.value.utf8).base64EncodedString(), actor: "bench"),
            timeout: .seconds(30))

        // Resolution as the gateway does it, with no cache: one vault read over NATS each time.
        let resolver = SecretResolver(client: client, bus: nil, lifetime: .zero, logger: Logger(label: "bench"))
        let reference = SecretReference(org: SecretReference.sharedOrg, path: Self.path)
        for _ in 0..<200 { _ = try await resolver.value(of: reference) }
        var samples: [Duration] = []
        let clock = ContinuousClock()
        for _ in 0..<resolutions {
            let start = clock.now
            _ = try await resolver.value(of: reference)
            samples.append(clock.now - start)
        }
        samples.sort()
        print(
            "resolution, cold cache (a vault read over NATS): p50 \(BenchSupport.percentile(samples, 0.5)), p99 \(BenchSupport.percentile(samples, 0.99))"
        )
    }

    /// Without --url: only this part (no vault needed).
    func leakGuard() {
        let clock = ContinuousClock()
        // The leak guard over a tools/call result of about 16 KiB of text, one and ten secrets known.
        let words = (0..<2_400).map { "word\($0 % 97)" }.joined(separator: " ")
        let result = JSONRPCMessage.result(
            id: .number("1"), result: .object([("content", .array([.object([("type", .string("text")), ("text", .string(words))])]))]))
        let kibibytes = Double(result.json.serialized().count) / 1024
        for count in [1, 10] {
            let redactor = SecretRedactor(
                secrets: (0..<count).map { (label: "bench/\($0)", value: Self.value + String($0)) })
            var leakGuard = LeakGuard(redactor)
            let rounds = 2_000
            for _ in 0..<100 { _ = leakGuard.scrub(result) }
            let start = clock.now
            for _ in 0..<rounds { _ = leakGuard.scrub(result) }
            let perRound = (clock.now - start) / rounds
            let nanoseconds = Double(perRound.components.attoseconds) / 1e9 + Double(perRound.components.seconds) * 1e9
            print(
                String(
                    format: "leak guard, %d secret(s) (%d patterns): %.0f ns per KiB of response (%.1f KiB result: %.1f µs)", count,
                    count * 12, nanoseconds / kibibytes, kibibytes, nanoseconds / 1000))
        }
        // For scale: parsing the same message, which the gateway does anyway.
        let bytes = result.json.serialized()
        let start = clock.now
        for _ in 0..<2_000 { _ = try? JSONParser().parse(bytes) }
        let parse = (clock.now - start) / 2_000
        print(String(format: "for scale, parsing that result: %.0f ns per KiB", (Double(parse.components.attoseconds) / 1e9) / kibibytes))
    }
}
