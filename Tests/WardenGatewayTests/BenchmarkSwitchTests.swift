import Logging
import Testing
import WardenServiceKit

@testable import WardenGateway

/// The switches that leave a stage out for side-by-side benchmarks never run a deployment's gateway.
@Suite struct BenchmarkSwitchTests {
    let logger = Logger(label: "test")

    @Test func aSwitchIsOnOnlyWhenTrueAndOnlyOnALoopbackGateway() throws {
        for name in ["WARDEN_BENCHMARK_UNDECIDED", "WARDEN_BENCHMARK_UNAUDITED"] {
            #expect(try !GatewayService.benchmarkSwitch(name, [:], host: "0.0.0.0", says: "x", logger: logger))
            #expect(try !GatewayService.benchmarkSwitch(name, [name: "1"], host: "127.0.0.1", says: "x", logger: logger))
            for host in ["127.0.0.1", "::1", "localhost"] {
                #expect(try GatewayService.benchmarkSwitch(name, [name: "true"], host: host, says: "x", logger: logger))
            }
            for host in ["0.0.0.0", "::", "10.0.0.5", "gateway.internal"] {
                let error = #expect(throws: ConfigurationError.self) {
                    try GatewayService.benchmarkSwitch(name, [name: "true"], host: host, says: "x", logger: logger)
                }
                #expect(error?.key == name && error?.problem.contains("benchmarks only") == true, "\(host)")
            }
        }
    }
}
