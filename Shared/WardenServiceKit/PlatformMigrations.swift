/// Migrations every service's schema starts with.
public enum PlatformMigrations {
    /// Each instance records itself at start-up: who ran against this schema, with which version, and when.
    public static let instances = Migration(
        version: 1,
        name: "service_instances",
        statements: [
            """
            CREATE TABLE service_instances (
                instance_id text PRIMARY KEY,
                version text NOT NULL,
                started_at timestamptz NOT NULL DEFAULT now()
            )
            """
        ]
    )
}
