import Logging
import Testing
import WardenServiceKit

@testable import WardenGateway

/// The switches that leave a stage out for side-by-side benchmarks never run a deployment's gateway.
@Suite struct BenchmarkSwitchTests {
    let logger = Logger(label: "test")

    @Test func aSwitchIsOnOnlyWhenTrueAndOnlyOnALoopbackGateway() throws {
        for name in ["WARDEN_BENCHMARK_UNDECIDED", "WARDEN_BENCHMARK_UNAUDITED"] {
            func on(_ value: String?, host: String, publicURL: String? = nil) throws(ConfigurationError) -> Bool {
                try GatewayService.benchmarkSwitch(
                    name, value.map { [name: $0] } ?? [:], host: host, publicURL: publicURL ?? "http://\(host):8080", says: "x", logger: logger)
            }
            #expect(try !on(nil, host: "0.0.0.0"))
            #expect(try !on("1", host: "127.0.0.1"))
            for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] {
                #expect(try on("true", host: host, publicURL: "http://\(host.contains(":") ? "[\(host)]" : host):8080"), "\(host)")
            }
            let refused: [(host: String, publicURL: String?)] = [
                ("0.0.0.0", nil), ("::", "http://[::]:8080"), ("10.0.0.5", nil), ("gateway.internal", nil), ("127.example.com", nil),
                // Listening on loopback behind a proxy that publishes it elsewhere.
                ("127.0.0.1", "https://mcp.example.com"),
            ]
            for (host, publicURL) in refused {
                let error = #expect(throws: ConfigurationError.self) { try on("true", host: host, publicURL: publicURL) }
                #expect(error?.key == name && error?.problem.contains("benchmarks only") == true, "\(host) \(publicURL ?? "")")
            }
        }
    }
}
