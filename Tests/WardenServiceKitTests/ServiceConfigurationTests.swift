import Configuration
import Foundation
import Logging
import Testing
import WardenContracts

@testable import WardenServiceKit

@Suite struct ServiceConfigurationTests {
    @Test func defaultsAreSafe() async throws {
        let configuration = try await ServiceConfiguration.load(service: .gateway, environment: [:])
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 8080)
        #expect(configuration.postgres.user == "warden_gateway")
        #expect(configuration.postgres.password == nil)
        #expect(configuration.natsServers == ["nats://127.0.0.1:4222"])
    }

    @Test func environmentOverrides() async throws {
        let configuration = try await ServiceConfiguration.load(
            service: .policy,
            environment: [
                "WARDEN_NATS_URL": "nats://a:1, nats://b:2",
                "WARDEN_HTTP_PORT": "0",
                "WARDEN_POSTGRES_PASSWORD": "s3cret",
                "WARDEN_LOG_LEVEL": "DEBUG",
                "WARDEN_LOG_FORMAT": "json",
            ]
        )
        #expect(configuration.natsServers == ["nats://a:1", "nats://b:2"])
        #expect(configuration.httpPort == 0)
        #expect(configuration.postgres.password == "s3cret")
        #expect(configuration.logLevel == .debug)
        #expect(configuration.logFormat == .json)
    }

    @Test(arguments: [
        ("WARDEN_HTTP_PORT", "eighty", "WARDEN_HTTP_PORT"),
        ("WARDEN_HTTP_PORT", "70000", "between 0 and 65535"),
        ("WARDEN_LOG_FORMAT", "xml", "text, json"),
        ("WARDEN_POSTGRES_TLS", "maybe", "disable, prefer, require"),
        ("WARDEN_NATS_URL", " ", "WARDEN_NATS_URL"),
    ])
    func invalidValuesAreNamed(variable: String, value: String, expected: String) async {
        await #expect {
            _ = try await ServiceConfiguration.load(service: .vault, environment: [variable: value])
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test func fileBelowEnvironment() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("warden-config-\(UUID().uuidString).json")
        try Data(#"{"http": {"port": 9999, "host": "0.0.0.0"}, "nats": {"url": "nats://file:4222"}}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let configuration = try await ServiceConfiguration.load(
            service: .audit,
            environment: ["WARDEN_CONFIG_FILE": file.path, "WARDEN_NATS_URL": "nats://env:4222"]
        )
        #expect(configuration.httpPort == 9999)
        #expect(configuration.httpHost == "0.0.0.0")
        #expect(configuration.natsServers == ["nats://env:4222"])
    }

    @Test func passwordFromFile() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("warden-pw-\(UUID().uuidString)")
        try Data("from-file\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let configuration = try await ServiceConfiguration.load(service: .audit, environment: ["WARDEN_POSTGRES_PASSWORD_FILE": file.path])
        #expect(configuration.postgres.password == "from-file")
        await #expect {
            _ = try await ServiceConfiguration.load(service: .audit, environment: ["WARDEN_POSTGRES_PASSWORD_FILE": "/nonexistent"])
        } throws: {
            "\($0)".contains("WARDEN_POSTGRES_PASSWORD_FILE")
        }
    }

    /// A service's own numeric settings: the default when unset or empty, the value within its
    /// range, and a clear refusal naming the setting otherwise.
    @Test func aServiceSettingIsANumberInItsRange() throws {
        func read(_ value: String?) throws(ConfigurationError) -> Int {
            try ServiceConfiguration.number(
                value.map { ["WARDEN_X_SECONDS": $0] } ?? [:], "WARDEN_X_SECONDS", key: "x.seconds", range: 0...300, unit: "seconds", default: 5)
        }
        #expect(try read(nil) == 5)
        #expect(try read("") == 5)
        #expect(try read("0") == 0 && read("300") == 300)
        for bad in ["301", "-1", "5s", "ten"] {
            #expect(throws: ConfigurationError.self) { try read(bad) }
            do { _ = try read(bad) } catch {
                #expect("\(error)".contains("x.seconds") && "\(error)".contains("must be 0 to 300 seconds"), "\(error)")
            }
        }
        #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration.number(["N": "21"], "N", key: "n", range: 1...20, unit: "", default: 6)
        }
    }

    /// Event-loop threads: half the cores by default (at least one), `WARDEN_EVENT_LOOPS` within
    /// 1–1,024 otherwise, and a clear refusal naming the variable.
    @Test func eventLoopThreadsAreHalfTheCoresUnlessSet() throws {
        #expect(try EventLoopThreads.count([:], cores: 1) == 1)
        #expect(try EventLoopThreads.count([:], cores: 2) == 1)
        #expect(try EventLoopThreads.count([:], cores: 3) == 1)
        #expect(try EventLoopThreads.count([:], cores: 16) == 8)
        #expect(try EventLoopThreads.count(["WARDEN_EVENT_LOOPS": "4"], cores: 2) == 4)
        #expect(try EventLoopThreads.count(["WARDEN_EVENT_LOOPS": ""], cores: 8) == 4, "empty: the default")
        #expect(EventLoopThreads.leavesToNIO(["NIO_SINGLETON_GROUP_LOOP_COUNT": "3"]))
        #expect(EventLoopThreads.leavesToNIO(["NIO_SINGLETON_GROUP_LOOP_COUNT": "3", "WARDEN_EVENT_LOOPS": ""]))
        #expect(!EventLoopThreads.leavesToNIO(["NIO_SINGLETON_GROUP_LOOP_COUNT": "3", "WARDEN_EVENT_LOOPS": "2"]))
        #expect(!EventLoopThreads.leavesToNIO([:]))
        for bad in ["0", "1025", "two", "-1"] {
            #expect {
                _ = try EventLoopThreads.count(["WARDEN_EVENT_LOOPS": bad], cores: 2)
            } throws: {
                "\($0)".contains("WARDEN_EVENT_LOOPS") && "\($0)".contains("must be 1 to 1024 threads")
            }
        }
    }

    @Test func missingConfigFileIsAnError() async {
        await #expect { _ = try await ServiceConfiguration.load(service: .audit, environment: ["WARDEN_CONFIG_FILE": "/nonexistent.json"]) } throws: {
            "\($0)".contains("/nonexistent.json")
        }
    }
}
