#!/usr/bin/env bash
# Shared helpers of `make up`, `make down` and `make test`: install checks, free ports, and real
# nats-server and PostgreSQL instances in a private directory.

WARDEN_SERVICES=(vault policy approvals audit gateway)

say()  { printf '\033[1m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# PostgreSQL server binaries (Debian keeps them off PATH).
pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

# Installs what is missing when root; otherwise says exactly what to install. `ensure_dependencies
# test` adds what only the tests use (SoftHSM2: the vault's PKCS#11 key provider against a real module;
# Chromium and its WebDriver: the approvals inbox in a real browser).
ensure_dependencies() {
  local missing=()
  if [ "${1:-}" = test ]; then
    command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    # promtool checks the metrics' exposition, the alerting rules and the dashboard's queries.
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    # openssl makes a self-signed certificate: TLS to downstream servers is verified.
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  fi
  if [ "${1:-}" = bench ]; then
    # The hot-path benchmark: wrk drives a fast MCP server in Node; callgrind counts instructions.
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
  fi
  command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
  pkg-config --exists libnats 2>/dev/null || [ -f /usr/include/nats/nats.h ] || missing+=(libnats-dev)
  pg_bin >/dev/null || missing+=(postgresql)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      say "installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq </dev/null >/dev/null || die "apt-get update failed"
      apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null || die "apt-get install ${missing[*]} failed"
    else
      die "missing: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}"
    fi
  fi
  command -v swift >/dev/null 2>&1 || die "swift is not on PATH (Swift 6.1 or newer is needed: https://www.swift.org/install/linux/)"
}

# A TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_in_use() {
  python3 -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1",int(sys.argv[1])))==0 else 1)' "$1"
}

# Runs a command as the PostgreSQL user when we are root (initdb refuses root).
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

random_secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

# start_nats DIR PORT [CONFIG]: JetStream enabled, data in DIR/nats, log in DIR/logs/nats.log. With
# CONFIG (deploy/nats/warden-nats.conf), a user per service, passwords from WARDEN_NATS_PASSWORD_*.
start_nats() {
  local dir=$1 port=$2 config=${3:-}
  mkdir -p "$dir/nats" "$dir/logs" "$dir/run"
  port_in_use "$port" && die "port $port (NATS) is already in use: set WARDEN_NATS_PORT to another port"
  local with_config=()
  [ -n "$config" ] && with_config=(-c "$config")
  # The configuration first: the flags after it take precedence over what it says.
  nats-server "${with_config[@]}" -a 127.0.0.1 -p "$port" -js -sd "$dir/nats" -n "warden-dev" >>"$dir/logs/nats.log" 2>&1 &
  echo $! >"$dir/run/nats.pid"
  local i
  for i in $(seq 1 100); do
    port_in_use "$port" && return 0
    kill -0 "$(cat "$dir/run/nats.pid")" 2>/dev/null || { tail -n 20 "$dir/logs/nats.log" >&2; die "nats-server exited at start (log: $dir/logs/nats.log)"; }
    sleep 0.1
  done
  die "nats-server did not listen on port $port within 10 s (log: $dir/logs/nats.log)"
}

# start_postgres DIR PORT ADMIN_PASSWORD [throwaway]: a private cluster in DIR/postgres (created on
# first use). PostgreSQL keeps its durability defaults; only a throwaway cluster (tests, benchmarks)
# trades them for speed (fsync=off), since a crash may then lose committed data.
start_postgres() {
  local dir=$1 port=$2 admin_password=$3 throwaway=${4:-} bin durability=""
  bin=$(pg_bin) || die "PostgreSQL server binaries not found"
  mkdir -p "$dir/logs" "$dir/run" "$dir/pgsocket"
  port_in_use "$port" && die "port $port (PostgreSQL) is already in use: set WARDEN_POSTGRES_PORT to another port"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir/pgsocket" "$dir/logs"; fi
  if [ ! -f "$dir/postgres/PG_VERSION" ]; then
    say "creating PostgreSQL cluster in $dir/postgres"
    mkdir -p "$dir/postgres"
    local pwfile="$dir/run/pgadmin.pw"
    printf '%s\n' "$admin_password" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir/postgres" "$pwfile"; fi
    chmod 700 "$dir/postgres"; chmod 600 "$pwfile"
    as_pg_user "$bin/initdb" -D "$dir/postgres" -U warden_admin --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-instructions >"$dir/logs/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; cat "$dir/logs/initdb.log" >&2; die "initdb failed (log: $dir/logs/initdb.log)"; }
    rm -f "$pwfile"
  fi
  [ "$throwaway" = throwaway ] && durability=" -c fsync=off -c synchronous_commit=off"
  as_pg_user "$bin/pg_ctl" -D "$dir/postgres" -l "$dir/logs/postgres.log" -w -t 30 \
    -o "-p $port -k $dir/pgsocket -c listen_addresses=127.0.0.1 -c max_connections=300$durability" start >/dev/null \
    || { tail -n 20 "$dir/logs/postgres.log" >&2; die "PostgreSQL failed to start (log: $dir/logs/postgres.log)"; }
}

stop_postgres() {
  local dir=$1 bin
  bin=$(pg_bin) || return 0
  [ -f "$dir/postgres/postmaster.pid" ] && as_pg_user "$bin/pg_ctl" -D "$dir/postgres" -m fast -w stop >/dev/null 2>&1 || true
}

# stop_pidfile FILE: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pidfile() {
  local file=$1 pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# provision DIR PORT ADMIN_PASSWORD: roles and schemas, passwords from the environment.
provision() {
  local dir=$1 port=$2 admin_password=$3 here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  PGHOST=127.0.0.1 PGPORT=$port PGUSER=warden_admin PGPASSWORD=$admin_password PGDATABASE=postgres \
    "$here/postgres/provision.sh" >"$dir/logs/provision.log" 2>&1 \
    || { cat "$dir/logs/provision.log" >&2; die "provisioning roles and schemas failed"; }
}

# start_private_servers DIR: nats-server and PostgreSQL on free ports for tests and benchmarks.
# Sets NATS_URL, PG_PORT and PG_ADMIN_PASSWORD; stop them with stop_private_servers DIR.
start_private_servers() {
  local dir=$1 nats_port
  nats_port=$(free_port)
  say "starting nats-server (JetStream) on 127.0.0.1:$nats_port"
  start_nats "$dir" "$nats_port"
  NATS_URL="nats://127.0.0.1:$nats_port"
  PG_PORT=$(free_port)
  PG_ADMIN_PASSWORD=$(random_secret)
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  start_postgres "$dir" "$PG_PORT" "$PG_ADMIN_PASSWORD" throwaway
}

stop_private_servers() {
  stop_postgres "$1"
  stop_pidfile "$1/run/nats.pid"
}
