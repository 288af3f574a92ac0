#!/usr/bin/env bash
# Creates the secret files compose.yaml reads (deploy/secrets/, mode 0600), keeping existing ones.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/deploy/secrets"
mkdir -p "$dir"
umask 077
[ -s "$dir/vault_key" ] || python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())' >"$dir/vault_key"
for name in admin_token postgres_admin_password db_password_gateway db_password_vault db_password_policy db_password_approvals db_password_audit \
  nats_password_gateway nats_password_vault nats_password_policy nats_password_approvals nats_password_audit; do
  [ -s "$dir/$name" ] || python3 -c 'import secrets; print(secrets.token_hex(24))' >"$dir/$name"
done
echo "secrets ready in $dir"
