import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import NIOCore
import PostgresNIO
import Prometheus
import ServiceLifecycle
import UnixSignals
import WardenContracts
import WardenNATS

/// The one entry point of every service executable: `await WardenServiceMain.run(PolicyService.self)`.
public enum WardenServiceMain {
    public static func run<Definition: WardenServiceDefinition>(_ definition: Definition.Type) async {
        let service = Definition.service
        ignoreBrokenPipes()
        do {
            try EventLoopThreads.configure(ProcessInfo.processInfo.environment)
            let configuration = try await ServiceConfiguration.load(service: service)
            WardenLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
            if ProcessInfo.processInfo.environment["WARDEN_BENCHMARK_NO_METRICS"] == "true" {
                // Benchmarks only: what metrics cost, measured against the same gateway without them.
                MetricsSystem.bootstrap(NOOPMetricsHandler.instance)
            } else {
                WardenMetrics.bootstrap()
            }
            try await run(definition, configuration: configuration)
        } catch {
            // The one place a start-up failure reaches the operator: name the service and the cause.
            FileHandle.standardError.write(Data("warden-\(service.rawValue): fatal: \(error)\n".utf8))
            exit(1)
        }
    }

    /// A write to a pipe whose reader is gone (a stdio MCP server that exited) must fail that write
    /// with EPIPE, never kill the process with SIGPIPE.
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Builds and runs the process's `ServiceGroup` until SIGTERM/SIGINT. Tests call this directly.
    public static func run<Definition: WardenServiceDefinition>(
        _ definition: Definition.Type,
        configuration: ServiceConfiguration
    ) async throws {
        let service = Definition.service
        let logger = {
            var logger = Logger(label: "warden.\(service.rawValue)")
            logger.logLevel = configuration.logLevel
            logger[metadataKey: "instance"] = "\(configuration.instanceID)"
            return logger
        }()

        let health = HealthState(service: service, instanceID: configuration.instanceID, version: WardenVersion.current)
        var natsConfiguration = NATSConnection.Configuration(
            servers: configuration.natsServers, name: "\(service.rawValue)/\(configuration.instanceID)")
        natsConfiguration.subscriptionBufferLimit = 16_384
        natsConfiguration.credentials = configuration.natsCredentials
        natsConfiguration.inboxScope = service.rawValue
        let bus = try NATSConnection(configuration: natsConfiguration, logger: logger.with(label: "nats"))
        let database = try ServiceDatabase.makeClient(
            configuration.postgres, applicationName: "warden-\(service.rawValue)/\(configuration.instanceID)", logger: logger.with(label: "postgres"))
        let gate = StartupGate()
        let runtime = ServiceRuntime(
            configuration: configuration,
            logger: logger,
            bus: bus,
            database: database,
            health: health,
            startup: gate,
            client: ServiceClient(bus: bus, caller: "\(service.rawValue)/\(configuration.instanceID)")
        )
        let tracing = try WardenTracing.bootstrap(configuration, logger: logger.with(label: "tracing"))
        let domain = try await Definition(runtime: runtime)

        let metrics = MetricsEndpoint(registry: WardenMetrics.registry) { [domain] in
            // Labelled with the service: scrape jobs differ between deployments, this does not.
            Gauge(label: "warden_nats_connected", dimensions: [("service", service.rawValue)]).record(bus.isConnected ? 1 : 0)
            Gauge(label: "warden_service_ready", dimensions: [("service", service.rawValue)]).record(health.snapshot.ready ? 1 : 0)
            await database.recordConnections(logger: logger)
            await domain.collectMetrics()
        }
        let router = Router(context: WardenRequestContext.self)
        router.middlewares.add(ObservabilityMiddleware())
        OperationsRoutes.add(
            to: router, readiness: domain.readiness ?? OperationsRoutes.instanceReadiness(health),
            metrics: configuration.metricsPort == nil ? metrics : nil)
        domain.addRoutes(to: router)
        let address = ApplicationConfiguration(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: nil)
        let listening: @Sendable (any Channel) async -> Void = { channel in
            logger.info(
                "listening", metadata: ["http.address": "\(channel.localAddress?.description ?? "?")", "version": "\(WardenVersion.current)"])
        }
        let http: any Service
        if let webSockets = domain.webSocketRoutes {
            http = Application(
                router: router, server: .http1WebSocketUpgrade(webSocketRouter: webSockets), configuration: address, onServerRunning: listening,
                logger: logger.with(label: "http"))
        } else {
            http = Application(router: router, configuration: address, onServerRunning: listening, logger: logger.with(label: "http"))
        }

        let healthResponder = ServiceResponder(PlatformSubjects.health(service), bus: bus, logger: logger) { _, _ in health.snapshot }
        let startup = StartupService(
            runner: MigrationRunner(schema: service.schema, migrations: Definition.migrations),
            database: database,
            settings: configuration.postgres,
            health: health,
            gate: gate,
            timeout: configuration.startupTimeout,
            logger: logger
        )
        let heartbeat = HeartbeatService(health: health, bus: bus, database: database, interval: configuration.heartbeatInterval, logger: logger)

        // Started in this order, stopped in reverse: the HTTP listener goes first, PostgreSQL last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = tracing.map { [.init(service: $0)] } ?? []
        services += [
            .init(service: database),
            .init(service: bus),
            .init(service: startup),
            .init(service: healthResponder),
        ]
        services += domain.services.map { .init(service: $0) }
        services += [.init(service: heartbeat)]
        if let port = configuration.metricsPort {
            services.append(.init(service: metrics.listener(host: configuration.httpHost, port: port, logger: logger.with(label: "metrics"))))
        }
        services.append(.init(service: http))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(15)
        let group = ServiceGroup(configuration: groupConfiguration)
        logger.info(
            "starting", metadata: ["version": "\(WardenVersion.current)", "nats.servers": "\(configuration.natsServers.joined(separator: ","))"])
        do {
            try await group.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw StartupError(
                "cannot listen on \(configuration.httpHost):\(configuration.httpPort): the address is already in use (set WARDEN_HTTP_PORT)"
            )
        }
        logger.info("stopped")
    }
}

extension Logger {
    /// A logger for a component, keeping the parent's metadata and level.
    func with(label suffix: String) -> Logger {
        var logger = Logger(label: "\(label).\(suffix)")
        logger.logLevel = logLevel
        for (key, value) in handler.metadata { logger[metadataKey: key] = value }
        return logger
    }
}
