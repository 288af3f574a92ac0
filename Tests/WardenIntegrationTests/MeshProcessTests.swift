import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import WardenContracts
import WardenNATS
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// The real executables, as `make up` runs them: each test gets a private nats-server (so that
/// heartbeats of parallel tests do not mix) and a fresh database.
final class TestMesh: @unchecked Sendable {
    let nats: NATSServerProcess
    let database: TestDatabase
    let gatewayPort: Int
    private(set) var processes: [String: ChildProcess] = [:]

    init() async throws {
        nats = try await NATSServerProcess(authenticated: true)
        database = try await TestDatabase.create()
        gatewayPort = freePort()
    }

    var gatewayURL: String { "http://127.0.0.1:\(gatewayPort)" }

    /// The vault's key for every test mesh: 32 fixed bytes (tests only).
    static let vaultKey = Data(repeating: 7, count: 32).base64EncodedString()

    func environment(_ service: WardenServiceName, port: Int, extra: [String: String] = [:]) throws -> [String: String] {
        var environment = try database.environment(for: service)
        environment["WARDEN_NATS_URL"] = nats.url
        environment["WARDEN_NATS_PASSWORD"] = nats.passwords[service]
        environment["WARDEN_HTTP_PORT"] = "\(port)"
        environment["WARDEN_LOG_LEVEL"] = "info"
        environment["WARDEN_STARTUP_TIMEOUT"] = "20"
        if service == .vault { environment["WARDEN_VAULT_KEY"] = Self.vaultKey }
        // Every gateway requires agent tokens (its default); tests administer it with this token.
        // Its replicas share one public URL (the first one's), as behind a load balancer: the
        // issuer and audience of the tokens they accept.
        if service == .gateway {
            environment["WARDEN_ADMIN_TOKEN"] = Self.adminToken
            environment["WARDEN_PUBLIC_URL"] = gatewayURL
        }
        environment.merge(extra) { $1 }
        return environment
    }

    /// Starts one instance; `name` tells instances of the same service apart.
    @discardableResult
    func start(_ service: WardenServiceName, name: String? = nil, extra: [String: String] = [:]) throws -> ChildProcess {
        let port = extra["WARDEN_HTTP_PORT"].flatMap(Int.init) ?? (service == .gateway ? gatewayPort : freePort())
        let child = try ChildProcess(
            name: name ?? service.rawValue,
            executable: try TestEnvironment.binaries.appendingPathComponent("warden-\(service.rawValue)"),
            environment: try environment(service, port: port, extra: extra)
        )
        processes[name ?? service.rawValue] = child
        return child
    }

    func startAll() throws {
        for service in WardenServiceName.allCases { try start(service) }
    }

    func status() async -> MeshStatus? {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: gatewayURL + "/readyz"), timeout: .seconds(2)),
            let body = try? await response.body.collect(upTo: 1 << 20)
        else { return nil }
        return try? EnvelopeCoding.decoder().decode(MeshStatus.self, from: Data(buffer: body))
    }

    func waitFor(_ description: String, timeout: Duration = .seconds(30), _ condition: @escaping (MeshStatus) -> Bool) async throws {
        let ok = await eventually(timeout: timeout) {
            guard let status = await self.status() else { return false }
            return condition(status)
        }
        if !ok {
            let logs = processes.map { "--- \($0.key)\n\($0.value.output.suffix(1500))" }.joined(separator: "\n")
            throw MeshTimeout(
                description: "\(description) did not happen within \(timeout); last status: \(String(describing: await status()))\n\(logs)")
        }
    }

    /// The platform admin token of every test gateway.
    static let adminToken = "test-admin-token-0123456789abcdef"

    /// The agent token that MCP requests made by the test helpers carry (`authorized()`), bound by
    /// `withAgent` for the test's body and every task it starts.
    @TaskLocal static var agentToken: String?

    /// Starts the vault and policy when they are not running, waits for them, creates org `acme`,
    /// its owner and an agent, and runs `body` with a token of that agent as `agentToken`.
    func withAgent<Result>(_ body: () async throws -> Result) async throws -> Result {
        for service in [WardenServiceName.vault, .policy] where processes[service.rawValue] == nil { try start(service) }
        try await waitFor("the vault and policy", timeout: .seconds(60)) { status in
            status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
        }
        func warden(_ arguments: [String]) async throws -> String {
            let (status, output) = try await runWarden(arguments, url: gatewayURL, adminToken: Self.adminToken)
            guard status == 0 else { throw MeshTimeout(description: "warden \(arguments.joined(separator: " ")) failed: \(output)") }
            return output
        }
        _ = try await warden(["org", "create", "acme", "--max-token-lifetime", "3600"])
        try await allowEverything("acme", url: gatewayURL)
        let owner = try await warden(["user", "add", "--org", "acme", "--email", "ada@acme.example", "--role", "owner"])
        let agent = try await warden(["agent", "add", "--org", "acme", "--name", "test-agent", "--owner", owner])
        let token = try await warden(["token", "issue", "--org", "acme", "--agent", agent])
        return try await Self.$agentToken.withValue(token) { try await body() }
    }

    func stopAll() async {
        for child in processes.values { await child.stop(signal: SIGKILL) }
        await nats.stop()
    }

    struct MeshTimeout: Error, CustomStringConvertible { var description: String }
}

/// Lets every agent of `org` use every tool (new orgs start with no policy, which allows nothing,
/// and hold new tools for approval): a policy allowing all, tools trusted on first use. For tests
/// about something else than policy.
func allowEverything(_ org: String, url: String, adminToken: String = TestMesh.adminToken) async throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("allow-all-\(UUID().uuidString).yaml")
    try Data("rules:\n  - {id: allow-all, effect: allow, tools: [\"*\"], prompts: [\"*\"], resources: [\"*\"]}\n".utf8).write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    let (status, output) = try await runWarden(["policy", "apply", "--org", org, "-f", file.path], url: url, adminToken: adminToken)
    guard status == 0 else { throw TestMesh.MeshTimeout(description: "warden policy apply for \(org) failed: \(output)") }
    // New orgs hold new tools for approval; tests that are not about tool pinning trust them on sight.
    let (trusted, trustOutput) = try await runWarden(["tool", "trust", "--org", org, "first-use"], url: url, adminToken: adminToken)
    guard trusted == 0 else { throw TestMesh.MeshTimeout(description: "warden tool trust for \(org) failed: \(trustOutput)") }
}

/// Runs `body` with a fresh mesh and stops every process it started, whether `body` throws or not.
func withMesh(_ body: (TestMesh) async throws -> Void) async throws {
    let mesh = try await TestMesh()
    do {
        try await body(mesh)
    } catch {
        await mesh.stopAll()
        throw error
    }
    await mesh.stopAll()
}

extension TestMesh {
    /// What a client process needs to act as the current test agent: the SDK checks read
    /// `MCP_BEARER_TOKEN`, `warden connect` reads `WARDEN_AGENT_TOKEN`.
    static var clientEnvironment: [String: String] {
        guard let token = agentToken else { return [:] }
        return ["MCP_BEARER_TOKEN": token, "WARDEN_AGENT_TOKEN": token]
    }
}

extension HTTPClientRequest {
    /// This request with the current test agent's token (`TestMesh.withAgent`), if any.
    func authorized() -> HTTPClientRequest {
        guard let token = TestMesh.agentToken else { return self }
        var request = self
        request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
        return request
    }
}

extension MeshStatus {
    func service(_ name: WardenServiceName) -> ServiceHealthSummary? { services.first { $0.service == name } }
}

@Suite(.serialized) struct MeshProcessTests {
    /// The threads of NIO's shared event-loop group in a process (NIO names them `NIO-SGLTN-…`).
    static func eventLoopThreads(of pid: Int32) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.filter { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? "").hasPrefix("NIO-SGLTN-")
        }.count
    }

    @Test func killedServiceIsReportedDownAndComesBack() async throws {
        try await withMesh { mesh in
            // Two vault replicas started at the same moment against an empty schema both come up.
            let vault1 = try mesh.start(.vault, name: "vault-1")
            let vault2 = try mesh.start(.vault, name: "vault-2", extra: ["WARDEN_EVENT_LOOPS": "3", "NIO_SINGLETON_GROUP_LOOP_COUNT": "2"])
            let policy = try mesh.start(.policy, extra: ["NIO_SINGLETON_GROUP_LOOP_COUNT": "2", "WARDEN_EVENT_LOOPS": ""])
            for service in [WardenServiceName.approvals, .audit, .gateway] { try mesh.start(service) }
            try await mesh.waitFor("the mesh becoming ready") { $0.status == "ready" && $0.service(.vault)?.readyInstances == 2 }
            // NIO's shared event loops: half the cores by default, as many as WARDEN_EVENT_LOOPS says
            // (NIO's own variable aside), or as NIO's variable says when it alone is set.
            let inherited = ProcessInfo.processInfo.environment
            if !EventLoopThreads.leavesToNIO(inherited) {
                #expect(Self.eventLoopThreads(of: vault1.pid) == (try EventLoopThreads.count(inherited)))
            }
            #expect(Self.eventLoopThreads(of: vault2.pid) == 3)
            #expect(Self.eventLoopThreads(of: policy.pid) == 2)

            // Every service answers its health request over NATS (one instance of the queue group).
            let bus = try await mesh.nats.connect(as: .gateway, name: "test-client")
            defer { bus.close() }
            let client = ServiceClient(bus: bus, caller: "test/health")
            for service in WardenServiceName.allCases {
                let health = try await client.call(PlatformSubjects.health(service), EmptyBody())
                #expect(health.service == service && health.ready && health.version == WardenVersion.current)
            }

            kill(policy.pid, SIGKILL)
            let killedAt = ContinuousClock.now
            try await mesh.waitFor("policy reported down", timeout: .seconds(5)) { $0.service(.policy)?.status == .down }
            let detection = ContinuousClock.now - killedAt
            #expect(detection <= .seconds(5), "detected in \(detection)")
            let degraded = try #require(await mesh.status())
            #expect(degraded.status == "degraded")
            #expect(degraded.service(.vault)?.readyInstances == 2 && degraded.service(.audit)?.status == .up)

            // The CLI sees the same, with exit status 2 for a degraded mesh.
            let cli = try ChildProcess(
                name: "cli",
                executable: try TestEnvironment.binaries.appendingPathComponent("warden"),
                arguments: ["status", "--url", mesh.gatewayURL, "--json"]
            )
            #expect(await cli.waitForExit(timeout: .seconds(10)) == 2)
            let report = try EnvelopeCoding.decoder().decode(MeshStatus.self, from: Data(cli.output.utf8))
            #expect(report.service(.policy)?.status == .down)

            let others = ["vault-1", "vault-2", "approvals", "audit", "gateway"].compactMap { mesh.processes[$0] }
            let pids = others.map(\.pid)
            try mesh.start(.policy)
            try await mesh.waitFor("policy back up", timeout: .seconds(20)) { $0.status == "ready" }
            #expect(others.allSatisfy { $0.isRunning } && others.map(\.pid) == pids, "no other service was restarted")

            // Graceful shutdown: SIGTERM ends the process cleanly and its goodbye removes it at once.
            let vault = try #require(mesh.processes["vault-1"])
            #expect(await vault.stop(signal: SIGTERM, timeout: .seconds(15)) == 0)
            try await mesh.waitFor("vault-1 gone", timeout: .seconds(2)) { $0.service(.vault)?.instances.count == 1 }
        }
    }

    @Test func natsRestartIsSurvivedWithoutRestartingServices() async throws {
        try await withMesh { mesh in
            try mesh.startAll()
            try await mesh.waitFor("the mesh becoming ready") { $0.status == "ready" }
            let pids = mesh.processes.mapValues(\.pid)
            await mesh.nats.stop()
            try await mesh.waitFor("the gateway noticing NATS is gone", timeout: .seconds(10)) { !$0.gateway.ready }
            try await mesh.nats.start()
            try await mesh.waitFor("the mesh ready again after NATS restarted", timeout: .seconds(30)) { $0.status == "ready" }
            #expect(mesh.processes.values.allSatisfy { $0.isRunning })
            #expect(mesh.processes.mapValues(\.pid) == pids)
        }
    }

    @Test func startupFailuresNameTheirCause() async throws {
        try await withMesh { mesh in
            let badPort = try mesh.start(.policy, name: "bad-port", extra: ["WARDEN_HTTP_PORT": "eighty"])
            let wrongPassword = "not-the-password-\(UUID().uuidString)"
            let badPassword = try mesh.start(.audit, name: "bad-password", extra: ["WARDEN_POSTGRES_PASSWORD": wrongPassword])
            let noDatabase = try mesh.start(
                .vault, name: "no-database", extra: ["WARDEN_POSTGRES_PORT": "\(freePort())", "WARDEN_STARTUP_TIMEOUT": "2"])
            let busyPort = try mesh.start(.approvals, name: "busy-port", extra: ["WARDEN_HTTP_PORT": "\(mesh.nats.port)"])
            let noLoops = try mesh.start(.gateway, name: "no-event-loops", extra: ["WARDEN_EVENT_LOOPS": "0", "WARDEN_HTTP_PORT": "\(freePort())"])
            #expect(await badPort.waitForExit(timeout: .seconds(10)) == 1)
            #expect(badPort.output.contains("WARDEN_HTTP_PORT"), "\(badPort.output)")
            #expect(await badPassword.waitForExit(timeout: .seconds(20)) == 1)
            #expect(badPassword.output.contains("password authentication failed"), "\(badPassword.output)")
            #expect(!badPassword.output.contains(wrongPassword), "the password never appears in output")
            #expect(await noDatabase.waitForExit(timeout: .seconds(20)) == 1)
            #expect(noDatabase.output.contains("PostgreSQL not reachable"), "\(noDatabase.output)")
            #expect(await busyPort.waitForExit(timeout: .seconds(20)) == 1)
            #expect(busyPort.output.contains("cannot listen on 127.0.0.1:\(mesh.nats.port): the address is already in use"), "\(busyPort.output)")
            #expect(await noLoops.waitForExit(timeout: .seconds(10)) == 1)
            #expect(noLoops.output.contains("WARDEN_EVENT_LOOPS") && noLoops.output.contains("must be 1 to 1024 threads"), "\(noLoops.output)")
        }
    }
}
