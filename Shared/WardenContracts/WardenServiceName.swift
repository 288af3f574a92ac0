/// The five Warden services. Each owns a PostgreSQL schema of the same name and the NATS subjects
/// under `warden.<service>.`.
public enum WardenServiceName: String, Codable, Sendable, CaseIterable {
    case gateway
    case vault
    case policy
    case approvals
    case audit

    /// The PostgreSQL schema the service owns (and the only one its role may use).
    public var schema: String { rawValue }

    /// The PostgreSQL role the service connects as.
    public var databaseRole: String { "warden_\(rawValue)" }

    /// The queue group its replicas share, so that each request is served once.
    public var queueGroup: String { "warden.\(rawValue)" }

    /// Default HTTP port of its operations listener (`/livez`, `/readyz`, `/metrics`).
    public var defaultHTTPPort: Int {
        switch self {
        case .gateway: 8080
        case .vault: 8081
        case .policy: 8082
        case .approvals: 8083
        case .audit: 8084
        }
    }
}
