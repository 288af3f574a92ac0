import Configuration
import Foundation
import Logging
import SystemPackage
import WardenContracts

/// Settings every Warden service reads at start-up.
///
/// Sources, first match wins: environment variables (`WARDEN_` + the key in upper snake case, e.g.
/// `nats.url` is `WARDEN_NATS_URL`), then the JSON file named by `WARDEN_CONFIG_FILE` (keys nested:
/// `{"nats": {"url": "..."}}`), then the defaults below.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `nats.url` | `nats://127.0.0.1:4222` | NATS server URLs, comma-separated |
/// | `nats.user` | the service's name | NATS user (when a password is set) |
/// | `nats.password` | none (secret) | the service's NATS password; none: connect without credentials |
/// | `nats.password.file` | none | read the NATS password from this file (container secrets) |
/// | `postgres.host` | `127.0.0.1` | PostgreSQL host (or a socket directory when it starts with `/`) |
/// | `postgres.port` | `5432` | |
/// | `postgres.database` | `warden` | |
/// | `postgres.user` | `warden_<service>` | the service's own role |
/// | `postgres.password` | none (secret) | |
/// | `postgres.password.file` | none | read the password from this file (container secrets) |
/// | `postgres.tls` | `prefer` | `disable`, `prefer` or `require` |
/// | `postgres.pool.max` | `10` | connections per instance |
/// | `http.host` | `127.0.0.1` | operations/API listener address; loopback unless configured |
/// | `http.port` | per service (gateway 8080 … audit 8084) | `0` picks a free port |
/// | `log.level` | `info` | `trace` … `critical` |
/// | `log.format` | `text` | `text` or `json` |
/// | `instance.id` | `<host>-<pid>-<random>` | |
/// | `startup.timeout` | `60` | seconds to wait for PostgreSQL at start before giving up |
/// | `heartbeat.interval.ms` | `1000` | how often the instance announces its health |
public struct ServiceConfiguration: Sendable {
    public var service: WardenServiceName
    public var natsServers: [String]
    /// The service's own NATS user and password (nil: an unauthenticated NATS, development only).
    public var natsCredentials: (user: String, password: String)?
    public var postgres: DatabaseSettings
    public var httpHost: String
    public var httpPort: Int
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var instanceID: String
    public var startupTimeout: Duration
    public var heartbeatInterval: Duration
    /// A second listener for `/metrics` only (`WARDEN_METRICS_PORT`): the main port then does not serve it.
    public var metricsPort: Int?
    /// Where traces go over OTLP/HTTP (`WARDEN_OTLP_ENDPOINT`, e.g. `http://collector:4318`); nil: no tracing.
    public var otlpEndpoint: String?
    /// The share of requests traced (`WARDEN_TRACE_SAMPLE_RATIO`, 0 to 1), decided where a request enters.
    public var traceSampleRatio: Double = 1

    public enum LogFormat: String, Sendable { case text, json }

    public struct DatabaseSettings: Sendable {
        public enum TLSMode: String, Sendable { case disable, prefer, require }
        public var host: String
        public var port: Int
        public var database: String
        public var user: String
        public var password: String?
        public var tls: TLSMode
        public var maxConnections: Int

        public init(host: String, port: Int, database: String, user: String, password: String?, tls: TLSMode = .disable, maxConnections: Int = 10) {
            self.host = host
            self.port = port
            self.database = database
            self.user = user
            self.password = password
            self.tls = tls
            self.maxConnections = maxConnections
        }
    }

    /// Defaults for a service; tests start from here and override.
    public init(service: WardenServiceName) {
        self.service = service
        self.natsServers = ["nats://127.0.0.1:4222"]
        self.postgres = DatabaseSettings(host: "127.0.0.1", port: 5432, database: "warden", user: service.databaseRole, password: nil, tls: .prefer)
        self.httpHost = "127.0.0.1"
        self.httpPort = service.defaultHTTPPort
        self.logLevel = .info
        self.logFormat = .text
        self.instanceID = Self.makeInstanceID()
        self.startupTimeout = .seconds(60)
        self.heartbeatInterval = .seconds(1)
    }

    /// Reads the configuration; throws a `ConfigurationError` naming the bad key and its variable.
    public init(service: WardenServiceName, reader: ConfigReader) throws(ConfigurationError) {
        self.init(service: service)
        let values = ConfigValues(reader: reader)
        natsServers = try values.string("nats.url", default: natsServers.joined(separator: ","))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !natsServers.isEmpty else { throw ConfigurationError(key: "nats.url", problem: "is empty") }
        if let password = try values.secretOrFile("nats.password") {
            natsCredentials = (try values.string("nats.user", default: service.rawValue), password)
        }
        postgres.host = try values.string("postgres.host", default: postgres.host)
        postgres.port = try values.int("postgres.port", default: postgres.port, range: 1...65535)
        postgres.database = try values.string("postgres.database", default: postgres.database)
        postgres.user = try values.string("postgres.user", default: postgres.user)
        postgres.password = try values.secretOrFile("postgres.password")
        postgres.tls = try values.choice("postgres.tls", default: postgres.tls)
        postgres.maxConnections = try values.int("postgres.pool.max", default: 10, range: 1...500)
        httpHost = try values.string("http.host", default: httpHost)
        httpPort = try values.int("http.port", default: httpPort, range: 0...65535)
        logLevel = try values.choice("log.level", default: logLevel)
        logFormat = try values.choice("log.format", default: logFormat)
        instanceID = try values.string("instance.id", default: instanceID)
        startupTimeout = .seconds(try values.int("startup.timeout", default: 60, range: 1...3600))
        heartbeatInterval = .milliseconds(try values.int("heartbeat.interval.ms", default: 1000, range: 100...60_000))
        if try !values.string("metrics.port", default: "").isEmpty {
            let port = try values.int("metrics.port", default: 0, range: 1...65535)
            guard port != httpPort else { throw ConfigurationError(key: "metrics.port", problem: "must differ from WARDEN_HTTP_PORT (\(httpPort))") }
            metricsPort = port
        }
        let endpoint = try values.string("otlp.endpoint", default: "")
        if !endpoint.isEmpty {
            guard let url = URL(string: endpoint), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ConfigurationError(
                    key: "otlp.endpoint", problem: "must be an http or https URL (the OTLP/HTTP receiver, e.g. http://collector:4318)")
            }
            otlpEndpoint = endpoint
        }
        let ratio = try values.string("trace.sample.ratio", default: "1")
        guard let sampled = Double(ratio), (0...1).contains(sampled) else {
            throw ConfigurationError(key: "trace.sample.ratio", problem: "must be a number from 0 to 1")
        }
        traceSampleRatio = sampled
    }

    /// Builds the standard reader: environment first, then the optional JSON file in `WARDEN_CONFIG_FILE`.
    public static func load(service: WardenServiceName, environment: [String: String] = ProcessInfo.processInfo.environment) async throws
        -> ServiceConfiguration
    {
        let secrets: Set<String> = ["WARDEN_POSTGRES_PASSWORD", "WARDEN_NATS_PASSWORD"]
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .specific(secrets)).prefixKeys(with: "warden")
        ]
        if let file = environment["WARDEN_CONFIG_FILE"], !file.isEmpty {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(file)))
            } catch {
                throw ConfigurationError(key: "config file", problem: "cannot read '\(file)': \(error)")
            }
        }
        return try ServiceConfiguration(service: service, reader: ConfigReader(providers: providers))
    }

    static func makeInstanceID() -> String {
        // gethostname, not ProcessInfo.hostName: the latter resolves the name (DNS) and can block for seconds.
        var buffer = [CChar](repeating: 0, count: 256)
        let name = gethostname(&buffer, buffer.count) == 0 ? buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : "host"
        let host = name.split(separator: ".").first.map(String.init) ?? "host"
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(random)"
    }
}

extension ServiceConfiguration {
    /// A whole number from a service's own environment variable (`variable`), `fallback` when it is
    /// unset or empty; anything else outside `range` is refused naming the setting (`key`) and the
    /// range in `unit`s.
    package static func number(
        _ environment: [String: String], _ variable: String, key: String, range: ClosedRange<Int>, unit: String, default fallback: Int
    ) throws(ConfigurationError) -> Int {
        guard let text = environment[variable], !text.isEmpty else { return fallback }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError(key: key, problem: "must be \(range.lowerBound) to \(range.upperBound)\(unit.isEmpty ? "" : " " + unit)")
        }
        return number
    }
}

/// A configuration value that is missing or invalid. The message names the environment variable.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var key: String
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    /// `nats.url` → `WARDEN_NATS_URL`.
    public static func environmentName(of key: String) -> String {
        "WARDEN_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    public var description: String { "configuration \(key) (\(Self.environmentName(of: key))) \(problem)" }
}

/// Typed, validated reads over a `ConfigReader`: an invalid value is an error, never silently the default.
struct ConfigValues {
    let reader: ConfigReader

    func string(_ key: String, default value: String) throws(ConfigurationError) -> String {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return value }
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw ConfigurationError(key: key, problem: "is empty") }
        return trimmed
    }

    func secret(_ key: String) -> String? {
        reader.string(forKey: ConfigKey(key), isSecret: true)
    }

    /// A secret given directly (`key`) or in a file (`key.file`, container secrets).
    func secretOrFile(_ key: String) throws(ConfigurationError) -> String? {
        if let value = secret(key), !value.isEmpty { return value }
        guard let file = secret(key + ".file"), !file.isEmpty else { return nil }
        do {
            return try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw ConfigurationError(key: key + ".file", problem: "cannot be read: \(file)")
        }
    }

    func int(_ key: String, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let raw = reader.string(forKey: ConfigKey(key)) else {
            if let number = reader.int(forKey: ConfigKey(key)) { return try check(key, number, range) }
            return value
        }
        guard let number = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigurationError(key: key, problem: "must be a whole number, got '\(raw)'")
        }
        return try check(key, number, range)
    }

    private func check(_ key: String, _ number: Int, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard range.contains(number) else {
            throw ConfigurationError(key: key, problem: "must be between \(range.lowerBound) and \(range.upperBound), got \(number)")
        }
        return number
    }

    func choice<Value: RawRepresentable<String>>(_ key: String, default value: Value) throws(ConfigurationError) -> Value
    where Value: CaseIterableByName {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return value }
        guard let parsed = Value(rawValue: raw.trimmingCharacters(in: .whitespaces).lowercased()) else {
            throw ConfigurationError(key: key, problem: "must be one of \(Value.allNames.joined(separator: ", ")), got '\(raw)'")
        }
        return parsed
    }
}

/// Enumerations read from configuration list their accepted names in errors.
protocol CaseIterableByName {
    static var allNames: [String] { get }
}

extension ServiceConfiguration.LogFormat: CaseIterableByName {
    static var allNames: [String] { ["text", "json"] }
}

extension ServiceConfiguration.DatabaseSettings.TLSMode: CaseIterableByName {
    static var allNames: [String] { ["disable", "prefer", "require"] }
}

extension Logger.Level: CaseIterableByName {
    static var allNames: [String] { Logger.Level.allCases.map(\.rawValue) }
}
