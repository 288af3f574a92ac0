import Foundation
import Logging
import Synchronization
import Testing
import WardenContracts
import WardenNATS
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// The real servers `make test` started (scripts/test.sh exports these). Integration tests fail with
/// this explanation when run without them, instead of silently skipping.
enum TestEnvironment {
    struct Missing: Error, CustomStringConvertible {
        var variable: String
        var description: String { "\(variable) is not set: integration tests need real servers; run them with `make test`" }
    }

    static func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { throw Missing(variable: name) }
        return value
    }

    static var natsURL: String { get throws { try value("WARDEN_TEST_NATS_URL") } }
    static var postgresPort: Int { get throws { Int(try value("WARDEN_TEST_PG_PORT"))! } }
    static var adminPassword: String { get throws { try value("WARDEN_TEST_PG_ADMIN_PASSWORD") } }
    static var databasePassword: String { get throws { try value("WARDEN_TEST_DB_PASSWORD") } }
    static var binaries: URL { get throws { URL(fileURLWithPath: try value("WARDEN_BIN_DIR")) } }
    static var repository: URL { get throws { URL(fileURLWithPath: try value("WARDEN_REPO_ROOT")) } }

    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()
}

/// A TCP port on 127.0.0.1 that nothing is bound to right now, for a server a test starts. Picked
/// below the kernel's ephemeral range: ports the kernel picks itself (for `bind` to port 0, and as
/// the local port of every outgoing connection, of which parallel tests make many) come from that
/// range, so a port picked there could be taken before the server binds it. Never the same port twice
/// in this process.
func freePort() -> Int {
    let ceiling = ephemeralPortsStart
    for _ in 0..<1_000 {
        let port = Int.random(in: 10_000..<ceiling)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
        if bindLoopback(port: port) != nil { return port }
    }
    return bindLoopback(port: 0) ?? 0
}

private let handedOutPorts = Mutex<Set<Int>>([])

/// The first port of the kernel's ephemeral range (32768 unless configured otherwise).
private let ephemeralPortsStart: Int = {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
    let low = range.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
    return min(max(low, 10_100), 65_535)
}()

/// Binds a socket to `port` on loopback (0: a port the kernel picks) and closes it: the port bound,
/// or nil if it could not be.
private func bindLoopback(port: Int) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

/// A child process the test owns: output goes to a file; `stop()` (or deinit) ends it.
final class ChildProcess: @unchecked Sendable {
    let outputFile: URL
    let name: String
    /// The HTTP port the child was told to use, if any.
    let port: Int?
    let pid: Int32
    private let exitStatus = Mutex<Int32?>(nil)

    /// Started with posix_spawn rather than Foundation's `Process`, whose `run()` on Linux (Swift
    /// 6.3.1) over-reads a directory entry while listing /proc/self/fd and crashes the test process
    /// now and then (swift-corelibs-foundation #5472). Descriptors beyond stderr are closed in the child.
    init(name: String, executable: URL, arguments: [String] = [], environment: [String: String] = [:]) throws {
        self.name = name
        self.port = environment["WARDEN_HTTP_PORT"].flatMap(Int.init)
        outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("warden-test-\(name)-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { $1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputFile.path, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // glibc 2.34's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not show.
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        let argv = ([executable.path] + arguments).map { strdup($0) }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") }
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable.path, &actions, nil, argv + [nil], envp + [nil])
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EINVAL) }
        pid = child
    }

    /// The exit status (or the signal that ended it), once it has exited.
    private func reaped() -> Int32? {
        exitStatus.withLock { status in
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f }
            }
            return status
        }
    }

    var isRunning: Bool { reaped() == nil }
    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async -> Int32 {
        if isRunning { kill(pid, signal) }
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if isRunning {
            kill(pid, SIGKILL)
            while isRunning { try? await Task.sleep(for: .milliseconds(5)) }
        }
        return reaped() ?? -1
    }

    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return reaped()
    }

    deinit {
        if reaped() == nil {
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
        try? FileManager.default.removeItem(at: outputFile)
    }
}

/// A private nats-server (JetStream on) for tests that must stop and restart it.
final class NATSServerProcess: @unchecked Sendable {
    let port: Int
    let storeDirectory: URL
    /// Each service's NATS password when the server requires users (`deploy/nats/warden-nats.conf`).
    let passwords: [WardenServiceName: String]
    private(set) var child: ChildProcess?

    /// - Parameter authenticated: users and permissions as every deployment has them; otherwise an
    ///   open server (tests of the NATS client itself).
    init(authenticated: Bool = false) async throws {
        port = freePort()
        // Starting with a digit, as `openssl rand -hex` passwords often do (nats-server once read those as numbers).
        passwords = authenticated ? Dictionary(uniqueKeysWithValues: WardenServiceName.allCases.map { ($0, "7\(UUID().uuidString)") }) : [:]
        // Under make test's work directory, so that its clean-up finds the server even if this process crashes.
        let base =
            ProcessInfo.processInfo.environment["WARDEN_TEST_WORKDIR"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
        storeDirectory = base.appendingPathComponent("warden-nats-\(UUID().uuidString)")
        try await start()
    }

    var url: String { "nats://127.0.0.1:\(port)" }

    func start() async throws {
        let executable = try Self.locate()
        var arguments = ["-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", storeDirectory.path]
        var environment: [String: String] = [:]
        if !passwords.isEmpty {
            arguments += ["-c", try TestEnvironment.repository.appendingPathComponent("deploy/nats/warden-nats.conf").path]
            // nats-server reads the variables as configuration values: quoted, each is a string.
            for (service, password) in passwords { environment["WARDEN_NATS_PASSWORD_\(service.rawValue.uppercased())"] = "\"\(password)\"" }
        }
        child = try ChildProcess(name: "nats-\(port)", executable: executable, arguments: arguments, environment: environment)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if child?.output.contains("Server is ready") == true { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestEnvironment.Missing(variable: "a nats-server that starts (output: \(child?.output ?? ""))")
    }

    /// Stops the server: killed by default; SIGTERM lets it flush its JetStream store first.
    func stop(signal: Int32 = SIGKILL) async {
        await child?.stop(signal: signal)
        child = nil
    }

    static func locate() throws -> URL {
        for directory in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
            let url = URL(fileURLWithPath: directory).appendingPathComponent("nats-server")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw TestEnvironment.Missing(variable: "nats-server on PATH")
    }

    deinit {
        try? FileManager.default.removeItem(at: storeDirectory)
    }
}

extension NATSServerProcess {
    /// Connects as `service` would: its user, and its inboxes.
    func connect(as service: WardenServiceName, name: String = "test") async throws -> NATSConnection {
        try await connectNATS(url, name: name) { configuration in
            if let password = passwords[service] { configuration.credentials = (service.rawValue, password) }
            configuration.inboxScope = service.rawValue
        }
    }
}

/// Runs one of `Tests/Python/`'s checks (the official SDK, as the current test agent); its exit
/// status and whole output.
func runPythonCheck(_ script: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (status: Int32?, output: String) {
    let path = try TestEnvironment.repository.appendingPathComponent("Tests/Python/\(script)").path
    let child = try ChildProcess(
        name: script, executable: URL(fileURLWithPath: try StdioServerTests.python), arguments: [path] + arguments,
        environment: TestMesh.clientEnvironment)
    let status = await child.waitForExit(timeout: timeout)
    return (status, child.output)
}

/// Connects to NATS and waits until connected.
func connectNATS(_ url: String, name: String = "test", configure: (inout NATSConnection.Configuration) -> Void = { _ in }) async throws
    -> NATSConnection
{
    var configuration = NATSConnection.Configuration(servers: [url], name: name)
    configure(&configuration)
    let connection = try NATSConnection(configuration: configuration, logger: TestEnvironment.logger)
    guard await connection.waitUntilConnected(timeout: .seconds(5)) else {
        connection.close()
        throw NATSError(.notConnected, "could not connect to \(url)")
    }
    return connection
}

/// Answers requests on `subject` with the request's payload (prefixed) until cancelled.
func echoResponder(_ bus: any MessageBus, subject: String, queue: String? = nil, prefix: String = "") throws -> (NATSSubscription, Task<Int, Never>) {
    let subscription = try bus.subscribe(subject, queue: queue)
    let task = Task {
        var served = 0
        for await message in subscription {
            served += 1
            try? bus.respond(to: message, payload: Data(prefix.utf8) + message.payload, headers: message.headers)
        }
        return served
    }
    return (subscription, task)
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// Runs the `warden` CLI against `url` with `adminToken` as its admin credential (and `environment`
/// besides); returns its exit status (nil: it did not end within 30 s) and its trimmed output.
func runWarden(_ arguments: [String], url: String, adminToken: String, environment: [String: String] = [:]) async throws -> (
    status: Int32?, output: String
) {
    let child = try ChildProcess(
        name: "warden-cli", executable: try TestEnvironment.binaries.appendingPathComponent("warden"), arguments: arguments,
        environment: ["WARDEN_URL": url, "WARDEN_ADMIN_TOKEN": adminToken].merging(environment) { $1 }
    )
    let status = await child.waitForExit(timeout: .seconds(30))
    return (status, child.output.trimmingCharacters(in: .whitespacesAndNewlines))
}
