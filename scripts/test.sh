#!/usr/bin/env bash
# `make test`: validates the deployment files, builds, starts a real nats-server (JetStream) and a
# private PostgreSQL on free ports, runs every Swift test against them, checks `make up` end to end,
# and stops everything it started, whatever happens.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"
cd "$root"

ensure_dependencies test

work=$(mktemp -d /tmp/warden-test.XXXXXX)
chmod 711 "$work"
cleanup() {
  stop_private_servers "$work"
  # Anything a test started and could not stop (say, the test process crashed) has $work in its
  # command line or inherited WARDEN_TEST_WORKDIR=$work: stop it too.
  pkill -KILL -f "$work" 2>/dev/null || true
  local proc
  for proc in /proc/[0-9]*; do
    [ "${proc#/proc/}" = "$$" ] && continue
    grep -qa "WARDEN_TEST_WORKDIR=$work" "$proc/environ" 2>/dev/null && kill -KILL "${proc#/proc/}" 2>/dev/null
  done
  true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "checking the code's format (swift format lint --strict, the repository's .swift-format)"
swift format lint --strict -r Services Shared Tests Benchmarks Package.swift \
  || die "swift format lint found the problems above: run 'swift format format -i -r Services Shared Tests Benchmarks Package.swift'"

say "checking that the gateway's folders depend on each other without cycles"
python3 "$root/scripts/check_layers.py" || die "the gateway's folders depend on each other in a cycle (above)"

say "validating compose.yaml and k8s/ (offline)"
"$root/scripts/validate-deploy.sh"

# Real MCP servers from PyPI for the downstream tests; a local AWS KMS (moto's server) for the vault's;
# an OAuth authorization server (authlib on Flask) for downstream OAuth connections; selenium to drive
# Chromium through the approvals inbox and the OAuth pages; websockets for the approvers' WebSocket
# channel; an OpenID Connect provider (oidc-provider-mock) for orgs that sign in at their own;
# opentelemetry-proto to decode the spans the services export over OTLP.
"$root/.venv/bin/python" -c 'import mcp_server_time, mcp_server_git, moto.server, boto3, authlib, flask, selenium, websockets, oidc_provider_mock, opentelemetry.proto' 2>/dev/null \
  || "$root/.venv/bin/pip" install --quiet --disable-pip-version-check mcp-server-time mcp-server-git "moto[server]" boto3 authlib flask selenium websockets oidc-provider-mock opentelemetry-proto \
  || die "pip install mcp-server-time mcp-server-git moto[server] boto3 authlib flask selenium websockets oidc-provider-mock opentelemetry-proto failed"
export WARDEN_TEST_PYTHON="$root/.venv/bin/python"

say "building (first build takes several minutes)"
# Hide SwiftPM's warnings about a dependency's CMake files; keep the exit status of swift build.
swift build --build-tests 2>&1 | { grep -vE "swift-distributed-tracing|CMakeLists.txt" || true; } || die "swift build failed"
bin=$(swift build --show-bin-path)

start_private_servers "$work"
export WARDEN_TEST_NATS_URL=$NATS_URL
export WARDEN_TEST_PG_PORT=$PG_PORT
export WARDEN_TEST_PG_ADMIN_PASSWORD=$PG_ADMIN_PASSWORD
export WARDEN_TEST_DB_PASSWORD
WARDEN_TEST_DB_PASSWORD=$(random_secret)
export WARDEN_BIN_DIR=$bin
export WARDEN_TEST_WORKDIR=$work
export WARDEN_REPO_ROOT=$root

say "running swift test (one test at a time: the integration tests start whole meshes, and on two cores"
say "  parallel meshes starve each other's timers)"
swift test --skip-build --no-parallel ${WARDEN_TEST_FILTER:+--filter "$WARDEN_TEST_FILTER"}

if [ -z "${WARDEN_TEST_FILTER:-}" ]; then
  say "checking make up end to end"
  python3 "$root/scripts/test_make_up.py"
fi
say "all tests passed"
