import Foundation
import Logging
import Subprocess
import Synchronization
import SystemPackage
import WardenMCP
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// One stdio MCP server process: newline-delimited JSON-RPC on its stdin/stdout, stderr into the
/// gateway's structured logs.
///
/// - The process runs in its own process group, so stopping it also stops whatever it spawned.
/// - It gets a minimal environment plus its configured variables, never the gateway's secrets.
/// - Replies are matched by ids the gateway assigns; messages that are not replies (notifications,
///   requests from the server) come out of `incoming`.
/// - A line over `maximumMessageBytes` is a protocol violation: pending calls fail and the process stops.
///
/// `run()` is the process's whole life: call it in a task; it returns when the process has exited.
package final class StdioServerConnection: Sendable {
    package let serverID: String
    package let spec: StdioLaunchSpec
    /// Where `spec.environment`'s secret references are resolved, and what the output is scrubbed of.
    let credentials: ServerCredentials?
    let logger: Logger
    private let outgoing: AsyncStream<[UInt8]>.Continuation
    private let outgoingMessages: AsyncStream<[UInt8]>
    private let incomingContinuation: AsyncStream<JSONRPCMessage>.Continuation
    /// Notifications and server-to-client requests, in arrival order.
    package let incoming: AsyncStream<JSONRPCMessage>
    private let pending: PendingReplies
    private let state = Mutex(State())

    private struct State {
        var processGroup: pid_t?
        var finished = false
    }

    package init(serverID: String, spec: StdioLaunchSpec, credentials: ServerCredentials? = nil, logger: Logger) {
        self.serverID = serverID
        self.spec = spec
        self.credentials = credentials
        var logger = logger
        logger[metadataKey: "mcp.server"] = "\(serverID)"
        self.logger = logger
        self.pending = PendingReplies(serverID: serverID)
        (outgoingMessages, outgoing) = AsyncStream.makeStream(of: [UInt8].self)
        (incoming, incomingContinuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(1_024))
    }

    /// The process's environment: a few inherited basics plus the configured variables.
    static func environment(_ configured: [String: String], parent: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var environment: [String: String] = [:]
        for name in StdioLaunchSpec.inheritedVariables { environment[name] = parent[name] }
        environment.merge(configured) { $1 }
        return environment
    }

    /// Starts the process and serves it until it exits (after `stop()`, a crash, or a protocol
    /// violation). Throws `DownstreamError.unavailable` if it cannot be started.
    @discardableResult
    package func run() async throws -> TerminationStatus {
        let executable: Executable = spec.command.contains("/") ? .path(FilePath(spec.command)) : .name(spec.command)
        // Credentials are resolved now, as the process starts, and live only in its environment.
        let configured: [String: String]
        do {
            configured = try await credentials?.resolvedEnvironment() ?? spec.environment
        } catch {
            finish(reason: "its credentials are not available")
            throw DownstreamError(.credentials, server: serverID, "\(error)")
        }
        var environment: [Environment.Key: String] = [:]
        for (name, value) in Self.environment(configured) { environment[Environment.Key(stringLiteral: name)] = value }
        var options = PlatformOptions()
        options.processGroupID = 0
        do {
            let result = try await Subprocess.run(
                executable,
                arguments: Arguments(spec.arguments),
                environment: .custom(environment),
                workingDirectory: spec.workingDirectory.map { FilePath($0) },
                platformOptions: options,
                input: .inputWriter,
                output: .sequence,
                error: .sequence
            ) { execution in
                state.withLock { $0.processGroup = execution.processIdentifier.value }
                logger.info("stdio server started", metadata: ["process.id": "\(execution.processIdentifier.value)"])
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.readReplies(execution.standardOutput) }
                    group.addTask { await self.readLog(execution.standardError) }
                    group.addTask { await self.writeRequests(execution.standardInputWriter) }
                    group.addTask { await self.pending.sweepDeadlines() }
                    // The server closed its stdout (it exited or is exiting): stop feeding it.
                    await group.next()
                    self.outgoing.finish()
                    group.cancelAll()
                    await group.waitForAll()
                }
            }
            finish(reason: "the server exited (\(result.terminationStatus))")
            logger.info("stdio server exited", metadata: ["process.status": "\(result.terminationStatus)"])
            return result.terminationStatus
        } catch {
            finish(reason: "the server could not be started")
            logger.error("stdio server could not be started", metadata: ["error": "\(error)", "command": "\(spec.command)"])
            throw DownstreamError(.unavailable, server: serverID, "could not start '\(spec.command)'")
        }
    }

    /// Sends a request and waits for its result. A JSON-RPC error from the server is thrown as
    /// `DownstreamError` with code `serverError`.
    package func request(_ method: String, params: JSONValue? = nil, timeout: Duration) async throws -> JSONValue {
        try await pending.call(method, timeout: timeout) { id in
            let line = JSONRPCMessage.request(id: .number(String(id)), method: method, params: params).json.serialized() + [0x0A]
            if case .terminated = outgoing.yield(line) { return false }
            return true
        } cancelled: { id in
            self.cancelled(id, reason: "the gateway stopped waiting")
        }
    }

    /// Sends a message that expects no reply (a notification, or an answer to the server's request).
    package func send(_ message: JSONRPCMessage) throws {
        let line = message.json.serialized() + [0x0A]
        if case .terminated = outgoing.yield(line) {
            throw DownstreamError(.unavailable, server: serverID, "the server is not running")
        }
    }

    /// Queued like any other line; nothing to wait for.
    package func cancelled(_ id: Int, reason: String) {
        try? send(.cancellation(of: id, reason: reason))
    }

    /// Closes the server's stdin (MCP servers exit on end of input); if it is still running after
    /// `grace`, sends SIGTERM to its process group, then SIGKILL after another `grace`.
    package func stop(grace: Duration = .seconds(2)) async {
        outgoing.finish()
        for signal in [SIGTERM, SIGKILL] {
            let deadline = ContinuousClock.now + grace
            while ContinuousClock.now < deadline {
                if state.withLock({ $0.finished }) { return }
                try? await Task.sleep(for: .milliseconds(20))
            }
            if let group = state.withLock({ $0.processGroup }), !state.withLock({ $0.finished }) {
                logger.warning("stdio server did not exit; signalling its process group", metadata: ["signal": "\(signal)"])
                kill(-group, signal)
            }
        }
    }

    /// The process group (equal to the server's process id) while it runs.
    package var processGroup: pid_t? { state.withLock { $0.finished ? nil : $0.processGroup } }

    /// Requests sent and not answered yet.
    package var waitingCalls: Int { pending.waiting }

    // MARK: Streams

    private func readReplies(_ output: SubprocessOutputSequence) async {
        var splitter = LineSplitter(maximumLength: spec.maximumMessageBytes)
        // One scan over all the process says: a value split across messages is found too.
        var leakGuard = LeakGuard(credentials)
        do {
            for try await buffer in output {
                let bytes = buffer.withUnsafeBytes { Array($0) }
                for piece in splitter.feed(bytes) {
                    switch piece {
                    case .line(let line): handle(line, scrubbedBy: &leakGuard)
                    case .tooLong:
                        logger.error(
                            "stdio server sent a message over the size limit; stopping it", metadata: ["limit.bytes": "\(spec.maximumMessageBytes)"])
                        finish(reason: "the server sent a message over \(spec.maximumMessageBytes) bytes", code: .protocolViolation)
                        if let group = state.withLock({ $0.processGroup }) { kill(-group, SIGKILL) }
                        return
                    }
                }
            }
        } catch {
            logger.debug("stdout closed", metadata: ["error": "\(error)"])
        }
    }

    private func readLog(_ output: SubprocessOutputSequence) async {
        var splitter = LineSplitter(maximumLength: 16 * 1024)
        do {
            for try await buffer in output {
                let bytes = buffer.withUnsafeBytes { Array($0) }
                for piece in splitter.feed(bytes) {
                    if case .line(let line) = piece {
                        logger.info("stderr", metadata: ["mcp.stderr": "\(String(decoding: line, as: UTF8.self))"])
                    }
                }
            }
        } catch {}
    }

    private func writeRequests(_ writer: StandardInputWriter) async {
        for await line in outgoingMessages {
            do {
                _ = try await writer.write(line)
            } catch {
                logger.warning("could not write to the stdio server", metadata: ["error": "\(error)"])
                break
            }
        }
        try? await writer.finish()
    }

    private func handle(_ line: [UInt8], scrubbedBy leakGuard: inout LeakGuard) {
        let message: JSONRPCMessage
        do {
            message = leakGuard.scrub(try JSONRPCMessage.parse(JSONParser().parse(line)))
        } catch {
            logger.warning("ignoring a line that is not JSON-RPC", metadata: ["error": "\(error)", "line.bytes": "\(line.count)"])
            return
        }
        switch message {
        case .request, .notification: incomingContinuation.yield(message)
        case .result, .error: pending.resolve(message)
        }
    }

    /// Fails every pending call and refuses new ones.
    private func finish(reason: String, code: DownstreamError.Code = .unavailable) {
        state.withLock { $0.finished = true }
        outgoing.finish()
        incomingContinuation.finish()
        pending.finish(DownstreamError(code, server: serverID, reason))
    }
}

extension StdioServerConnection: DownstreamConnection {
    package func serve() async throws -> String {
        "the process exited (\(try await run()))"
    }
}
