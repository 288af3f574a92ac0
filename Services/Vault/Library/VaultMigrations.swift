import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenIdentity
import WardenServiceKit

/// The vault's schema: token signing keys.
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
}
