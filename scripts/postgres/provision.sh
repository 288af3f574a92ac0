#!/usr/bin/env bash
# Provisions Warden's database, roles and schemas (idempotent). Used by `make up`, `make test`,
# the compose init step and the Kubernetes job.
#
# Connection: the usual libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD or a file named by
# WARDEN_ADMIN_PASSWORD_FILE) for a superuser.
# WARDEN_POSTGRES_DATABASE (default warden); one password per service role:
# WARDEN_DB_PASSWORD_GATEWAY, _VAULT, _POLICY, _APPROVALS, _AUDIT (or, in containers, files named
# by WARDEN_DB_PASSWORD_<SERVICE>_FILE).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
db=${WARDEN_POSTGRES_DATABASE:-warden}
if [ -z "${PGPASSWORD:-}" ] && [ -n "${WARDEN_ADMIN_PASSWORD_FILE:-}" ]; then
  PGPASSWORD=$(cat "$WARDEN_ADMIN_PASSWORD_FILE"); export PGPASSWORD
fi
# Passwords go through a private file, not argv, so that `ps` never shows them.
vars=$(mktemp)
trap 'rm -f "$vars"' EXIT
chmod 600 "$vars"
for service in gateway vault policy approvals audit; do
  upper=$(echo "$service" | tr '[:lower:]' '[:upper:]')
  var="WARDEN_DB_PASSWORD_$upper"
  file_var="${var}_FILE"
  password=${!var:-}
  if [ -z "$password" ] && [ -n "${!file_var:-}" ]; then password=$(cat "${!file_var}"); fi
  if [ -z "$password" ]; then echo "provision: $var (or $file_var) is not set" >&2; exit 2; fi
  escaped=$(printf '%s' "$password" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g")
  printf "\\set pw_%s '%s'\n" "$service" "$escaped" >> "$vars"
done
psql -v ON_ERROR_STOP=1 -q -X -d "${PGDATABASE:-postgres}" -v "db=$db" -f "$vars" -f "$here/provision.sql"
