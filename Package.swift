// swift-tools-version: 6.1
import PackageDescription

// Every target of ours compiles with the same strictness (see ../shared/ENGINEERING.md §5).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The five services share one shape: a thin executable (`Main/`) over a library (`Library/`).
let services = ["Gateway", "Vault", "Policy", "Approvals", "Audit"]

var targets: [Target] = [
    // MARK: Shared libraries
    .systemLibrary(
        name: "CNATS",
        path: "Shared/CNATS",
        pkgConfig: "libnats",
        providers: [.apt(["libnats-dev"])]
    ),
    .target(
        name: "WardenNATS",
        dependencies: [
            "CNATS",
            // Its JSON parser reads JetStream's replies (Foundation's decoder cost ~32,000 instructions an ack).
            "WardenMCP",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Shared/WardenNATS",
        swiftSettings: strict
    ),
    .target(
        name: "WardenContracts",
        // The JSON parser: hand-read envelopes of the hot paths (`HandWrittenJSON`).
        dependencies: ["WardenMCP"],
        path: "Shared/WardenContracts",
        swiftSettings: strict
    ),
    // The audit record's hash chains, checkpoints and exports: the audit service and `warden audit
    // verify --file` (an auditor's tool) verify with the same code.
    .target(
        name: "WardenAuditChain",
        dependencies: ["WardenContracts", .product(name: "Crypto", package: "swift-crypto")],
        path: "Shared/WardenAuditChain",
        swiftSettings: strict
    ),
    .target(
        name: "WardenMCP",
        dependencies: [],
        path: "Shared/WardenMCP",
        swiftSettings: strict
    ),
    // Policy documents and their evaluation: no I/O (issue #13). Yams reads the YAML with the
    // line and column of every node, for errors that point at the field.
    .target(
        name: "WardenPolicyEngine",
        dependencies: ["WardenMCP", .product(name: "Yams", package: "Yams")],
        path: "Shared/WardenPolicyEngine",
        swiftSettings: strict
    ),
    // Agent tokens: claims, signing, local validation, JWKS (issue #4).
    .target(
        name: "WardenIdentity",
        dependencies: [
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Crypto", package: "swift-crypto"),
        ],
        path: "Shared/WardenIdentity",
        swiftSettings: strict
    ),
    .target(
        name: "WardenServiceKit",
        dependencies: [
            "WardenNATS",
            "WardenContracts",
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Tracing", package: "swift-distributed-tracing"),
            .product(name: "ServiceContextModule", package: "swift-service-context"),
        ],
        path: "Shared/WardenServiceKit",
        swiftSettings: strict
    ),

    // MARK: The operator's command-line tool
    .target(
        name: "WardenCLI",
        dependencies: [
            "WardenContracts",
            "WardenIdentity",
            "WardenMCP",
            "WardenAuditChain",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ],
        path: "Services/CLI/Library",
        swiftSettings: strict
    ),
    .executableTarget(
        name: "WardenCLIMain",
        dependencies: ["WardenCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
        path: "Services/CLI/Main",
        swiftSettings: strict
    ),

    // MARK: Benchmarks
    .executableTarget(
        name: "WardenBenchmarks",
        dependencies: [
            "WardenIdentity",
            "WardenNATS",
            "WardenContracts",
            "WardenGateway",
            "WardenMCP",
            "WardenServiceKit",
            "WardenPolicyEngine",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ],
        path: "Benchmarks/WardenBenchmarks",
        swiftSettings: strict
    ),

    // MARK: Tests
    .testTarget(
        name: "WardenNATSTests",
        dependencies: ["WardenNATS"],
        path: "Tests/WardenNATSTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenIdentityTests",
        dependencies: ["WardenIdentity", .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Crypto", package: "swift-crypto")],
        path: "Tests/WardenIdentityTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenPolicyEngineTests",
        dependencies: ["WardenPolicyEngine", "WardenMCP"],
        path: "Tests/WardenPolicyEngineTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenMCPTests",
        dependencies: ["WardenMCP"],
        path: "Tests/WardenMCPTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenContractsTests",
        dependencies: ["WardenContracts", "WardenMCP"],
        path: "Tests/WardenContractsTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenServiceKitTests",
        dependencies: [
            "WardenServiceKit",
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "ServiceContextModule", package: "swift-service-context"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        path: "Tests/WardenServiceKitTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenGatewayTests",
        dependencies: [
            "WardenGateway", "WardenCLI", "WardenMCP", "WardenServiceKit", "WardenNATS", "WardenIdentity", "WardenContracts", "WardenPolicyEngine",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ],
        path: "Tests/WardenGatewayTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenApprovalsTests",
        dependencies: ["WardenApprovals", "WardenContracts"],
        path: "Tests/WardenApprovalsTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WardenVaultTests",
        dependencies: ["WardenVault", "WardenContracts", "WardenIdentity", .product(name: "Crypto", package: "swift-crypto")],
        path: "Tests/WardenVaultTests",
        swiftSettings: strict
    ),
    // Needs a real nats-server and PostgreSQL: `make test` starts them (scripts/test-env).
    .testTarget(
        name: "WardenIntegrationTests",
        dependencies: [
            "WardenNATS",
            "WardenContracts",
            "WardenServiceKit",
            "WardenGateway",
            "WardenCLI",
            "WardenMCP",
            "WardenIdentity",
            "WardenVault",
            "WardenPolicy",
            "WardenPolicyEngine",
            "WardenAudit",
            "WardenAuditChain",
            "WardenApprovals",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ],
        path: "Tests/WardenIntegrationTests",
        swiftSettings: strict
    ),
]

var products: [Product] = [
    .executable(name: "warden", targets: ["WardenCLIMain"]),
    .executable(name: "warden-bench", targets: ["WardenBenchmarks"]),
]

for service in services {
    targets.append(
        .target(
            name: "Warden\(service)",
            dependencies: [
                "WardenServiceKit",
                "WardenNATS",
                "WardenContracts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceContextModule", package: "swift-service-context"),
            ],
            path: "Services/\(service)/Library",
            swiftSettings: strict
        )
    )
    targets.append(
        .executableTarget(
            name: "Warden\(service)Main",
            dependencies: [.target(name: "Warden\(service)"), "WardenServiceKit"],
            path: "Services/\(service)/Main",
            swiftSettings: strict
        )
    )
    products.append(.executable(name: "warden-\(service.lowercased())", targets: ["Warden\(service)Main"]))
}

// The vault signs agent tokens and derives a root key from a passphrase (scrypt, in _CryptoExtras).
if let index = targets.firstIndex(where: { $0.name == "WardenVault" }) {
    targets[index].dependencies += [
        "WardenIdentity", "WardenAuditChain", .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "_CryptoExtras", package: "swift-crypto"),
        .product(name: "NIOPosix", package: "swift-nio"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOFoundationCompat", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
    ]
}

// The policy service decides with the policy engine.
if let index = targets.firstIndex(where: { $0.name == "WardenPolicy" }) {
    targets[index].dependencies += ["WardenPolicyEngine", "WardenMCP"]
}

// The audit service hashes its records into chains.
if let index = targets.firstIndex(where: { $0.name == "WardenAudit" }) {
    targets[index].dependencies += ["WardenAuditChain", .product(name: "Crypto", package: "swift-crypto")]
}

// The gateway also speaks MCP, supervises stdio servers and calls remote (HTTP) ones.
if let index = targets.firstIndex(where: { $0.name == "WardenGateway" }) {
    targets[index].dependencies += [
        "WardenMCP",
        "WardenPolicyEngine",
        "WardenIdentity",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOWebSocket", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Subprocess", package: "swift-subprocess"),
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "HTTPTypes", package: "swift-http-types"),
        .product(name: "NIOCore", package: "swift-nio"),
    ]
}

let package = Package(
    name: "Warden",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-service-context", from: "1.5.1"),
    ],
    targets: targets,
    swiftLanguageModes: [.v6]
)
