import CoreMetrics
import Metrics
import Prometheus

/// The process's metrics: one Prometheus registry behind swift-metrics, and the catalogue of every
/// metric Warden defines with its help text (Prometheus's `# HELP` line; `promtool check metrics`
/// wants one on each). Code records through swift-metrics (`Counter(label:dimensions:)`); a name
/// that is not in the catalogue is still exported, without help, and a unit test keeps the two in step.
package enum WardenMetrics {
    package static let registry = PrometheusCollectorRegistry()

    /// Bootstraps swift-metrics with the registry (once per process; later calls are ignored).
    package static func bootstrap() {
        _ = bootstrapOnce
    }

    /// A factory recording into `registry` with the catalogue's help text (tests: their own registry).
    package static func factory(registry: PrometheusCollectorRegistry) -> any MetricsFactory { Factory(registry: registry) }

    private static let bootstrapOnce: Void = MetricsSystem.bootstrap(Factory(registry: registry))

    /// Buckets for latencies: 100 µs to 30 s.
    static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
        .seconds(5), .seconds(10), .seconds(30),
    ]

    /// Every metric Warden defines, by name: its help text.
    package static let catalogue: [String: String] = [
        // Every service.
        "warden_http_requests_total": "HTTP requests answered, by method, route template and status code.",
        "warden_http_request_duration_seconds": "Time to answer an HTTP request (until the response head), by method and route template.",
        "warden_nats_requests_total": "NATS requests this process sent to other services, by subject and outcome.",
        "warden_nats_request_duration_seconds": "Round trip of a NATS request to another service, by subject.",
        "warden_nats_handled_total": "NATS requests this process served, by subject and outcome.",
        "warden_nats_handle_duration_seconds": "Time to serve a NATS request, by subject.",
        "warden_nats_reconnects_total": "Times the NATS connection was re-established.",
        "warden_nats_dropped_messages_total": "Messages dropped because a subscription's buffer was full (their requesters time out).",
        "warden_nats_connected": "1 while the NATS connection is up, by service.",
        "warden_postgres_connections_max": "The PostgreSQL connection pool's size (WARDEN_POSTGRES_POOL_MAX).",
        "warden_postgres_connections":
            "This instance's PostgreSQL pool connections by state, as pg_stat_activity shows them when scraped (-1: PostgreSQL could not say).",
        "warden_postgres_query_duration_seconds":
            "Time from asking the pool to run a statement until PostgreSQL's first answer (waiting for a free connection included).",
        "warden_postgres_lease_wait_seconds": "Time waiting for a pooled connection for a transaction or a series of statements.",
        "warden_postgres_lease_duration_seconds": "Time a pooled connection was held for a transaction or a series of statements.",
        "warden_postgres_errors_total":
            "Statements PostgreSQL refused, by SQLSTATE class (23: a constraint, 40: a conflict to retry, ...), or connection when no connection could be had.",
        "warden_trace_spans_exported_total": "Spans sent to the OTLP receiver, by outcome (exported, refused, failed: those are lost).",
        "warden_trace_spans_dropped_total": "Spans dropped because the export buffer was full (the receiver is down or slow).",
        "warden_service_ready": "1 while this instance reports ready, by service (gateway, vault, policy, approvals, audit).",
        // Gateway.
        "warden_mcp_requests_total": "MCP requests answered, by method, server, tool and outcome.",
        "warden_mcp_request_duration_seconds": "End-to-end time of an MCP request in the gateway, by method and server.",
        "warden_mcp_downstream_duration_seconds":
            "Time from forwarding a request to its answer (waiting for a free or starting instance included), by server and method.",
        "warden_mcp_stage_duration_seconds": "Time spent in one stage of the gateway's pipeline, by stage.",
        "warden_mcp_sessions_created_total": "MCP sessions created (handshake era).",
        "warden_mcp_standing_streams": "Standing (GET) event streams open on this instance.",
        "warden_mcp_server_up": "1 while an MCP server has at least one ready instance, by server.",
        "warden_mcp_server_instances": "Instances of an MCP server running on this gateway, by server.",
        "warden_mcp_server_restarts_total": "Restarts of an MCP server's instances, by server.",
        "warden_mcp_server_in_flight": "Calls running on an MCP server's instances, by server.",
        "warden_mcp_server_queue_wait_seconds": "Time a call waited for a free instance of an MCP server, by server.",
        "warden_audit_spool_events": "Audit events the gateway holds that the audit stream has not stored yet.",
        "warden_audit_spool_capacity": "The audit spool's capacity: requests are refused when it is full.",
        "warden_audit_publish_duration_seconds": "Time for JetStream to acknowledge a batch of audit events.",
        "warden_audit_published_events_total": "Audit events published to the audit stream, by outcome (stored, failed: retried).",
        "warden_audit_unrecorded_requests_total":
            "Requests that ran unrecorded while audit was unavailable, for orgs that chose to continue (each gap is recorded afterwards).",
        "warden_audit_sink_deliveries_total": "Deliveries of stored audit records to webhook sinks, by outcome (delivered, failed: retried).",
        "warden_audit_sink_records_total": "Audit records webhook sinks acknowledged.",
        "warden_jetstream_consumer_ack_pending":
            "Messages a durable JetStream consumer delivered and has not had acknowledged, by stream and consumer (read from NATS when the gateway is scraped).",
        "warden_jetstream_consumer_pending": "Messages of the stream not yet delivered to a durable consumer, by stream and consumer.",
        "warden_jetstream_consumer_redelivered":
            "Messages a durable consumer has delivered more than once and not had acknowledged yet, by stream and consumer.",
        // Policy, vault, approvals, audit.
        "warden_policy_decisions_total": "Policy decisions, by outcome (allow, deny, approve).",
        "warden_vault_resolutions_total": "Secret resolutions for MCP servers' credentials, by outcome.",
        "warden_approvals_pending": "Approval requests waiting for a decision, in every org (read from the database when scraped).",
        "warden_approvals_changes_total": "Changes to approval requests, by event (opened, approved, rejected, expired, ...).",
        "warden_audit_events_written_total": "Audit events written to the record by this audit instance (redeliveries not counted).",
        "warden_audit_ingest_lag_seconds":
            "Age of the oldest event in the last batch this audit instance stored (from the event's time to its record).",
    ]

    /// swift-metrics handlers backed by the registry, with the catalogue's help text.
    struct Factory: MetricsFactory {
        let registry: PrometheusCollectorRegistry

        func descriptor(_ label: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: label, unitName: "", helpText: WardenMetrics.catalogue[label] ?? "")
        }

        func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
            registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        }

        func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
            registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        }

        func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
            aggregate
                ? registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
                : registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
        }

        func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
            registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
        }

        func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
            registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: WardenMetrics.durationBuckets)
        }

        // A destroyed metric leaves the exposition (a removed server's gauges must not linger).
        func destroyCounter(_ handler: any CounterHandler) {
            if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
        }

        func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
            if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
        }

        func destroyRecorder(_ handler: any RecorderHandler) {
            if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
            if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
        }

        func destroyMeter(_ handler: any MeterHandler) {
            if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        }

        func destroyTimer(_ handler: any TimerHandler) {
            if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
        }
    }
}
