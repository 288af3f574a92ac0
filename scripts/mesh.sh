#!/usr/bin/env bash
# `make up`: the whole Warden mesh on this machine (nats-server with JetStream, a private PostgreSQL
# cluster, the five services), data under .warden/, in the foreground with prefixed logs.
# `make down`: stops a mesh left running (for example from another terminal).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"
state=${WARDEN_STATE_DIR:-"$root/.warden"}
settings="$state/mesh.env"

down() {
  local had=0 service
  for service in "${WARDEN_SERVICES[@]}"; do
    [ -f "$state/run/$service.pid" ] && had=1
    stop_pidfile "$state/run/$service.pid"
  done
  [ -f "$state/run/nats.pid" ] && had=1
  stop_postgres "$state"
  stop_pidfile "$state/run/nats.pid"
  [ "$had" = 1 ] && say "mesh stopped" || say "no mesh was running"
}

running_mesh() {
  local file
  for file in "$state"/run/*.pid; do
    [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null && return 0
  done
  return 1
}

# Ports and secrets are chosen once and kept in .warden/mesh.env (mode 0600), so a second
# `make up` reuses the same data and credentials. A kept port that is now taken is replaced.
load_settings() {
  mkdir -p "$state/run" "$state/logs"
  chmod 711 "$state"  # PostgreSQL (another user when root) must reach .warden/postgres
  if [ -f "$settings" ]; then
    # shellcheck disable=SC1090
    . "$settings"
  fi
  local configured_nats=${WARDEN_NATS_PORT_OVERRIDE:-} configured_pg=${WARDEN_POSTGRES_PORT_OVERRIDE:-} configured_gw=${WARDEN_GATEWAY_PORT_OVERRIDE:-}
  NATS_PORT=${configured_nats:-${NATS_PORT:-}}
  PG_PORT=${configured_pg:-${PG_PORT:-}}
  GATEWAY_PORT=${configured_gw:-${GATEWAY_PORT:-}}
  if [ -z "$NATS_PORT" ] || { [ -z "$configured_nats" ] && port_in_use "$NATS_PORT"; }; then NATS_PORT=$(free_port); fi
  if [ -z "$PG_PORT" ] || { [ -z "$configured_pg" ] && port_in_use "$PG_PORT"; }; then PG_PORT=$(free_port); fi
  if [ -z "$GATEWAY_PORT" ]; then
    if port_in_use 8080; then GATEWAY_PORT=$(free_port); else GATEWAY_PORT=8080; fi
  elif [ -z "$configured_gw" ] && port_in_use "$GATEWAY_PORT"; then
    GATEWAY_PORT=$(free_port)
  fi
  PG_ADMIN_PASSWORD=${PG_ADMIN_PASSWORD:-$(random_secret)}
  WARDEN_ADMIN_TOKEN=${WARDEN_ADMIN_TOKEN:-$(random_secret)}
  WARDEN_VAULT_KEY=${WARDEN_VAULT_KEY:-$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')}
  local service upper var
  for service in "${WARDEN_SERVICES[@]}"; do
    upper=$(echo "$service" | tr '[:lower:]' '[:upper:]')
    var="WARDEN_DB_PASSWORD_$upper"
    [ -n "${!var:-}" ] || printf -v "$var" '%s' "$(random_secret)"
    var="WARDEN_NATS_PASSWORD_$upper"
    [ -n "${!var:-}" ] || printf -v "$var" '%s' "$(random_secret)"
  done
  umask 077
  {
    echo "# Written by make up. Holds local secrets: keep it private."
    echo "NATS_PORT=$NATS_PORT"
    echo "PG_PORT=$PG_PORT"
    echo "GATEWAY_PORT=$GATEWAY_PORT"
    echo "PG_ADMIN_PASSWORD=$PG_ADMIN_PASSWORD"
    for service in "${WARDEN_SERVICES[@]}"; do
      upper=$(echo "$service" | tr '[:lower:]' '[:upper:]')
      var="WARDEN_DB_PASSWORD_$upper"
      echo "$var=${!var}"
      var="WARDEN_NATS_PASSWORD_$upper"
      echo "$var=${!var}"
    done
    echo "WARDEN_URL=http://127.0.0.1:$GATEWAY_PORT"
    echo "WARDEN_ADMIN_TOKEN=$WARDEN_ADMIN_TOKEN"
    echo "WARDEN_VAULT_KEY=$WARDEN_VAULT_KEY"
  } >"$settings"
  umask 022
}

# start_service NAME PORT: runs one service with its environment, output prefixed with [NAME].
start_service() {
  local service=$1 port=$2 upper password_var colour
  upper=$(echo "$service" | tr '[:lower:]' '[:upper:]')
  password_var="WARDEN_DB_PASSWORD_$upper"
  case $service in
    gateway) colour=36 ;; vault) colour=35 ;; policy) colour=32 ;; approvals) colour=33 ;; *) colour=34 ;;
  esac
  # Whatever the calling shell exported (say, after sourcing .warden/mesh.env), a service gets its
  # own database password only, and no administrator's password.
  local other unset_others=(-u PG_ADMIN_PASSWORD) nats_password_var="WARDEN_NATS_PASSWORD_$upper"
  for other in "${WARDEN_SERVICES[@]}"; do
    unset_others+=(-u "WARDEN_DB_PASSWORD_$(echo "$other" | tr '[:lower:]' '[:upper:]')")
    unset_others+=(-u "WARDEN_NATS_PASSWORD_$(echo "$other" | tr '[:lower:]' '[:upper:]')")
  done
  env "${unset_others[@]}" \
  WARDEN_NATS_URL="nats://127.0.0.1:$NATS_PORT" WARDEN_NATS_PASSWORD="${!nats_password_var}" \
  WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT="$PG_PORT" WARDEN_POSTGRES_TLS=disable \
  WARDEN_POSTGRES_PASSWORD="${!password_var}" \
  WARDEN_HTTP_PORT="$port" WARDEN_LOG_LEVEL="${WARDEN_LOG_LEVEL:-info}" \
  WARDEN_ADMIN_TOKEN="$( [ "$service" = gateway ] && echo "$WARDEN_ADMIN_TOKEN" )" \
  WARDEN_BOOTSTRAP_ORG=demo WARDEN_BOOTSTRAP_OWNER_EMAIL=owner@demo.local \
  WARDEN_VAULT_KEY="$( [ "$service" = vault ] && echo "$WARDEN_VAULT_KEY" )" \
    "$bin/warden-$service" \
    > >(tee -a "$state/logs/$service.log" | sed -u "s/^/$(printf '\033[%sm' "$colour")[$service]$(printf '\033[0m') /") 2>&1 &
  echo $! >"$state/run/$service.pid"
}

up() {
  running_mesh && die "a mesh is already running from $state: stop it with 'make down'"
  ensure_dependencies
  say "building (first build takes several minutes)"
  # Hide SwiftPM's warnings about a dependency's CMake files; keep the exit status of swift build.
  swift build --package-path "$root" 2>&1 | { grep -vE "swift-distributed-tracing|CMakeLists.txt" || true; } || die "swift build failed"
  bin=$(swift build --package-path "$root" --show-bin-path)
  load_settings
  trap 'echo; say "stopping"; down; exit 0' INT TERM
  trap 'down >/dev/null 2>&1' EXIT
  local started=$SECONDS
  say "starting nats-server (JetStream, a user per service) on 127.0.0.1:$NATS_PORT"
  (
    # nats-server reads each variable as a configuration value: quoted, a password is a string
    # whatever it starts with.
    for service in "${WARDEN_SERVICES[@]}"; do
      var="WARDEN_NATS_PASSWORD_$(echo "$service" | tr '[:lower:]' '[:upper:]')"
      export "$var=\"${!var}\""
    done
    start_nats "$state" "$NATS_PORT" "$root/deploy/nats/warden-nats.conf"
  )
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT (data: $state/postgres)"
  start_postgres "$state" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  # Each service gets its own database password only (start_service); provisioning alone sees all.
  (
    for service in "${WARDEN_SERVICES[@]}"; do export "WARDEN_DB_PASSWORD_$(echo "$service" | tr '[:lower:]' '[:upper:]')"; done
    provision "$state" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  )
  local service port
  for service in "${WARDEN_SERVICES[@]}"; do
    if [ "$service" = gateway ]; then port=$GATEWAY_PORT; else port=$(free_port); fi
    start_service "$service" "$port"
  done
  local url="http://127.0.0.1:$GATEWAY_PORT" deadline=$((SECONDS + ${WARDEN_UP_TIMEOUT:-120}))
  say "waiting for every service to report ready"
  until "$bin/warden" status --url "$url" --timeout 2 >/dev/null 2>&1; do
    for service in "${WARDEN_SERVICES[@]}"; do
      if ! kill -0 "$(cat "$state/run/$service.pid")" 2>/dev/null; then
        wait "$(cat "$state/run/$service.pid")" 2>/dev/null || true
        sleep 0.2
        echo >&2
        tail -n 5 "$state/logs/$service.log" >&2 || true
        die "the $service service exited during start-up (log: $state/logs/$service.log)"
      fi
    done
    [ $SECONDS -lt $deadline ] || { "$bin/warden" status --url "$url" >&2 || true; die "the mesh was not ready within ${WARDEN_UP_TIMEOUT:-120} s"; }
    sleep 0.5
  done
  "$bin/warden" status --url "$url" || true
  say "seeding the demo org, agent and MCP server"
  WARDEN_ADMIN_TOKEN="$WARDEN_ADMIN_TOKEN" "$bin/warden" demo --url "$url" --out "$state/demo.env" \
    --server-command "$bin/warden-bench" --server-arg mcp-server --warden-path "$bin/warden" \
    || warn "the demo could not be seeded (the mesh runs; see the gateway's log)"
  cat <<MSG

$(printf '\033[1;32m')Warden is ready$(printf '\033[0m') in $((SECONDS - started)) s.
  gateway   $url
  MCP       $url/mcp   (agents need a token: see $state/demo.env)
  status    $bin/warden status --url $url
  servers   set -a; . $settings; set +a; $bin/warden server list   (add: warden server add <id> --command …)
  settings  $settings (ports and local secrets, mode 0600)
  logs      $state/logs/
Stop with Ctrl-C here, or 'make down' from another terminal.

MSG
  # Stay in the foreground; report a service that dies, keep the rest running.
  declare -A reported=()
  while true; do
    if [ ! -f "$state/run/nats.pid" ]; then say "mesh stopped (make down)"; trap - EXIT; exit 0; fi
    for service in "${WARDEN_SERVICES[@]}"; do
      if [ -z "${reported[$service]:-}" ] && ! kill -0 "$(cat "$state/run/$service.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
        warn "the $service service stopped (log: $state/logs/$service.log)"
        reported[$service]=1
      fi
    done
    sleep 1
  done
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) die "usage: scripts/mesh.sh up|down" ;;
esac
