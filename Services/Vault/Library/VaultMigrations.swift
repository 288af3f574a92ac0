import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenIdentity
import WardenServiceKit

/// The vault's schema: token signing keys; the key hierarchy and secrets.
package enum VaultMigrations {
    package static let signingKeys = Migration(
        version: 2,
        name: "signing_keys",
        statements: [
            """
            CREATE TABLE signing_keys (
                kid text PRIMARY KEY,
                sealed_private_key bytea NOT NULL,
                public_key bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                retired_at timestamptz
            )
            """
        ]
    )

    /// Org keys bound to a share kept outside PostgreSQL (`OrgKeyShares`); keys made before are
    /// not, until an org key rotation replaces them. A shredded org's last key version is kept, so
    /// that a recreated org's keys never reuse a number a replica may still have cached.
    package static let orgKeyShares = Migration(
        version: 10,
        name: "org_key_shares",
        statements: [
            "ALTER TABLE org_keys ADD COLUMN bound_to_share boolean NOT NULL DEFAULT false",
            "CREATE TABLE org_key_tombstones (org text PRIMARY KEY, last_version int NOT NULL, shredded_at timestamptz NOT NULL DEFAULT now())",
        ]
    )

    /// Envelope encryption: org keys wrapped by the root key, secrets with versions sealed under
    /// data keys wrapped by org keys. A record can only name an org key version that exists.
    /// Signing keys get their own data key (filled in at start-up from what was sealed before).
    package static let envelopes = Migration(
        version: 5,
        name: "envelope_encryption",
        statements: [
            "CREATE TABLE root_key_salt (id int PRIMARY KEY CHECK (id = 1), salt bytea NOT NULL)",
            """
            CREATE TABLE org_keys (
                org text NOT NULL,
                version int NOT NULL CHECK (version > 0),
                wrapped_key bytea NOT NULL,
                root_key_id text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (org, version)
            )
            """,
            """
            CREATE TABLE secrets (
                org text NOT NULL,
                path text NOT NULL,
                current_version int NOT NULL,
                description text,
                tags text[] NOT NULL DEFAULT '{}',
                created_at timestamptz NOT NULL DEFAULT now(),
                created_by text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                updated_by text NOT NULL,
                expires_at timestamptz,
                last_used_at timestamptz,
                deleted_at timestamptz,
                PRIMARY KEY (org, path)
            )
            """,
            """
            CREATE TABLE secret_versions (
                org text NOT NULL,
                path text NOT NULL,
                version int NOT NULL,
                ciphertext bytea,
                wrapped_data_key bytea,
                org_key_version int,
                created_at timestamptz NOT NULL DEFAULT now(),
                created_by text NOT NULL,
                destroyed_at timestamptz,
                PRIMARY KEY (org, path, version),
                FOREIGN KEY (org, path) REFERENCES secrets (org, path) ON DELETE CASCADE,
                FOREIGN KEY (org, org_key_version) REFERENCES org_keys (org, version)
            )
            """,
            "CREATE INDEX secret_versions_by_org_key ON secret_versions (org, org_key_version)",
            """
            ALTER TABLE signing_keys ADD COLUMN org text NOT NULL DEFAULT 'warden:platform', ADD COLUMN wrapped_data_key bytea,
              ADD COLUMN org_key_version int, ADD FOREIGN KEY (org, org_key_version) REFERENCES org_keys (org, version)
            """,
        ]
    )
}
