#!/usr/bin/env bash
# Runs `make up` as a user would (in a private state directory), waits for the ready message,
# presses Ctrl-C, checks that everything stopped, then runs it again and checks that the data was
# reused. Prints "N passed, N failed" at the end.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"
state=$(mktemp -d /tmp/warden-up.XXXXXX)
log=$state.log
passed=0 failed=0
check() { if eval "$2"; then passed=$((passed+1)); echo "ok: $1"; else failed=$((failed+1)); echo "FAILED: $1"; tail -n 30 "$log"; fi; }

run_up() {
  : >"$log"
  WARDEN_STATE_DIR=$state WARDEN_GATEWAY_PORT_OVERRIDE=$(free_port) setsid "$root/scripts/mesh.sh" up >"$log" 2>&1 </dev/null &
  up_pid=$!
  local i
  for i in $(seq 1 240); do
    grep -q "Warden is ready" "$log" && return 0
    kill -0 "$up_pid" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}

stop_up() {
  kill -INT -- "-$up_pid" 2>/dev/null || kill -INT "$up_pid" 2>/dev/null
  local i
  for i in $(seq 1 150); do kill -0 "$up_pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "-$up_pid" 2>/dev/null
  return 1
}

run_up; check "make up prints the ready message" "grep -q 'Warden is ready' '$log'"
check "make up created a PostgreSQL cluster" "grep -q 'creating PostgreSQL cluster' '$log'"
stop_up; check "Ctrl-C stops make up" "! kill -0 $up_pid 2>/dev/null"
sleep 0.5
check "no service, nats-server or PostgreSQL is left running" "! pgrep -f '$state' >/dev/null"
run_up; check "a second make up is ready again" "grep -q 'Warden is ready' '$log'"
check "a second make up reuses its data" "! grep -q 'creating PostgreSQL cluster' '$log'"
WARDEN_STATE_DIR=$state "$root/scripts/mesh.sh" down >/dev/null 2>&1
for i in $(seq 1 50); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.2; done
check "make down stops a running mesh" "! pgrep -f '$state' >/dev/null && ! kill -0 $up_pid 2>/dev/null"
pkill -KILL -f "$state" 2>/dev/null
rm -rf "$state" "$log"
echo "make-up: $passed passed, $failed failed"
[ "$failed" = 0 ]
