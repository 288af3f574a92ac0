#!/usr/bin/env bash
# `make bench`: the measurements in BENCHMARKS.md, on this machine, in one run.
#  0. (below, last) MCP proxy: tools/call through the gateway (release build) vs directly to the same
#     server (`warden-bench mcp-server`, over stdio and over Streamable HTTP), sequential latency and
#     throughput; once with every process on both cores, once with the gateway on a core of its own.
#     Each run also measures the same servers with a credential injected from the vault (and the
#     leak guard on), secret resolution with a cold cache, and the leak guard's cost per KiB, and
#     through a second gateway with authentication, policy (warm cache) and tool pinning on.
#  1. NATS request/reply between two processes (release build): sequential latency, and
#     throughput with 32 requests in flight.
#  2. Agent token validation as the gateway does it per request (local, cached keys).
#  3. The vault over NATS (release build): secret writes per second, reads with the org key cached,
#     and the rate at which an org key rotation rewraps data keys.
#  4. Policy: rule evaluation in process with 1,000 rules, and decisions over NATS from a release-build
#     policy service (sequential latency, throughput with 32 in flight). WARDEN_BENCH_ONLY=policy runs
#     this part alone.
#  5. Approvals: from an approver's decision to the approved call's result (woken, claimed, run,
#     stored) against a release-build approvals service, with nothing else pending and with 1,000
#     requests held pending by waiting calls. WARDEN_BENCH_ONLY=approvals runs this part alone.
#  6. Audit: call events (batched as the gateway batches them) published to the audit stream until a
#     release-build audit service has stored them all in its hash chains, then one chain verified;
#     then rounds of 50,000 events with random ids and with time-ordered ones (what every service
#     makes), as A B B A (WARDEN_BENCH_AUDIT_ID_ROUNDS, default 4; 0: none). WARDEN_BENCH_ONLY=audit
#     runs this part alone. The MCP proxy runs (0) also compare a gateway
#     recording every request with the same gateway recording nothing (WARDEN_BENCHMARK_UNAUDITED).
#  8. OAuth: the token endpoint (authorization-code exchange and refresh) through a release-build
#     mesh, and the password KDF's cost. WARDEN_BENCH_ONLY=oauth runs this part alone.
#  9. Observability: the proxy path with metrics on, with tracing at 100%, and with metrics off
#     (3 epochs of fresh gateways, WARDEN_BENCH_OBS_EPOCHS; 30 rounds of 1 s windows each,
#     WARDEN_BENCH_OBS_ROUNDS, a multiple of 6); then the gateway's instructions per call, the same
#     three ways, under callgrind. WARDEN_BENCH_OBS_CONTROL=1 makes the third gateway the same as the first in both
#     parts (an A/A control: "metrics cost" is then the method's own bias and spread). Only with
#     WARDEN_BENCH_ONLY=observability (not in a full run); WARDEN_BENCH_ONLY=observability-throughput
#     runs the first part alone, WARDEN_BENCH_ONLY=observability-instructions the second, and
#     WARDEN_BENCH_KEEP_CALLGRIND=DIR keeps callgrind's files there (for callgrind_annotate).
# 10. Auditing's cost: the proxy path through a gateway recording every request and through the
#     same gateway recording nothing, in alternating rounds, with the CPU per call of the gateway, the
#     audit service, NATS and PostgreSQL. Only with WARDEN_BENCH_ONLY=auditing (not in a full run).
# 11. The hot path (issue #10, last): a fast MCP server in Node (Benchmarks/HotPath) directly and
#     through a release-build mesh (authentication, policy, audit on) over Streamable HTTP and stdio,
#     both protocol eras, wrk at 32 connections and at one; the gateway's CPU per call; then its
#     instructions per proxied call under callgrind, and with WARDEN_BENCH_HOTPATH_OTHER_BIN=DIR those
#     of the warden-gateway in DIR (another build) after it, or with WARDEN_BENCH_HOTPATH_OTHER_ENV
#     (NAME=VALUE words) those of the same gateway run with that environment added
#     (WARDEN_BENCHMARK_UNAUDITED=true: recording nothing). WARDEN_BENCH_ONLY=hotpath runs this part alone.
# 12. Policy's cost: the proxy path through the same authenticated gateway deciding every call
#     (warm cache, tool pins checked) and deciding nothing (WARDEN_BENCHMARK_UNDECIDED), in
#     alternating rounds, with the gateways' CPU per call; every process on both cores (in a full
#     run, before 11), and with WARDEN_BENCH_ONLY=policy-cost, which runs this part alone, again with
#     the gateways and the stdio servers they start on core 1 and the load generator, the HTTP
#     server and the vault, policy and audit services on core 0 (NATS and PostgreSQL unpinned).
# 13. The gateway against itself built with other swift build arguments (WARDEN_BENCH_OTHER_FLAGS,
#     used instead of the release build's own --static-swift-stdlib -Xswiftc -cross-module-optimization:
#     "--static-swift-stdlib -Xswiftc -O", say, for the gateway without the optimisation), run with
#     another environment
#     (WARDEN_BENCH_OTHER_ENV), or against another build of it (WARDEN_BENCH_OTHER_BIN: a directory
#     holding a warden-gateway, e.g. from another commit), in alternating rounds. Only with
#     WARDEN_BENCH_ONLY=compare.
# 14. The downstream client: one Streamable HTTP request (`tools/call` to the fast Node server, one
#     at a time) through the gateway's own client (DownstreamHTTPClient) and through async-http-client
#     as the gateway used it before, in alternating rounds with this process's CPU time per request;
#     then each client's instructions per request under callgrind (by difference between 200 and
#     2,200 requests). Only with WARDEN_BENCH_ONLY=downstream-client (not in a full run).
#  7. Mesh start-up: five service processes (the debug build `make up` runs) from launch until the
#     gateway reports every service ready, against running NATS and PostgreSQL. Median of 3.
set -euo pipefail
# Command substitutions ($(bench_agent_token …)) stop at a failing command too.
shopt -s inherit_errexit
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"
# A directory named relative to where make ran, before the script moves to the repository.
[ -n "${WARDEN_BENCH_KEEP_CALLGRIND:-}" ] && WARDEN_BENCH_KEEP_CALLGRIND=$(realpath -m "$WARDEN_BENCH_KEEP_CALLGRIND")
[ -n "${WARDEN_BENCH_OTHER_BIN:-}" ] && WARDEN_BENCH_OTHER_BIN=$(realpath -m "$WARDEN_BENCH_OTHER_BIN")
cd "$root"
ensure_dependencies bench
work=$(mktemp -d /tmp/warden-bench.XXXXXX)
chmod 711 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  stop_private_servers "$work"
  rm -rf "$work"
}
trap cleanup EXIT

# The release image's flags (Dockerfile), so that what is measured is what ships: cross-module
# optimisation cut the gateway's CPU a call by 2-8% (6-7.5% in three of four measurements; Swift
# 6.3.1, no auth or audit: BENCHMARKS.md, hot path, fifteenth and sixteenth sessions); the standard
# library linked in, as the image links it, spares every call into the Swift runtime a shared
# library's indirection and thread-local lookups (BENCHMARKS.md, hot path, eighteenth session).
release_flags=(--static-swift-stdlib -Xswiftc -cross-module-optimization)

# The comparison's inputs (part 13), checked before anything is built.
compare_flags=() compare_env=() compare_names=()
audit_id_rounds=${WARDEN_BENCH_AUDIT_ID_ROUNDS:-4}
[[ "$audit_id_rounds" =~ ^[0-9]+$ ]] && [ $((10#$audit_id_rounds % 4)) -eq 0 ] \
  || die "WARDEN_BENCH_AUDIT_ID_ROUNDS: a multiple of 4 (A B B A blocks), 0 for none"
audit_id_rounds=$((10#$audit_id_rounds))
hotpath_other_bin=""
if [ -n "${WARDEN_BENCH_HOTPATH_OTHER_BIN:-}" ]; then
  [ -x "$WARDEN_BENCH_HOTPATH_OTHER_BIN/warden-gateway" ] \
    || die "WARDEN_BENCH_HOTPATH_OTHER_BIN: no executable warden-gateway in $WARDEN_BENCH_HOTPATH_OTHER_BIN"
  hotpath_other_bin=$(realpath -e "$WARDEN_BENCH_HOTPATH_OTHER_BIN")
fi
read -r -a hotpath_other_env <<<"${WARDEN_BENCH_HOTPATH_OTHER_ENV:-}"
[ -z "$hotpath_other_bin" ] || [ ${#hotpath_other_env[@]} -eq 0 ] \
  || die "WARDEN_BENCH_HOTPATH_OTHER_BIN and WARDEN_BENCH_HOTPATH_OTHER_ENV: one at a time"
for word in "${hotpath_other_env[@]}"; do
  # The word itself is never printed: a mistyped one may hold a value.
  [[ "$word" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "WARDEN_BENCH_HOTPATH_OTHER_ENV: a word is not NAME=VALUE"
done
if [ "${WARDEN_BENCH_ONLY:-}" = compare ]; then
  read -r -a compare_flags <<<"${WARDEN_BENCH_OTHER_FLAGS:-}"
  read -r -a compare_env <<<"${WARDEN_BENCH_OTHER_ENV:-}"
  [ ${#compare_flags[@]} -gt 0 ] || [ ${#compare_env[@]} -gt 0 ] || [ -n "${WARDEN_BENCH_OTHER_BIN:-}" ] \
    || die "set WARDEN_BENCH_OTHER_FLAGS, WARDEN_BENCH_OTHER_ENV or WARDEN_BENCH_OTHER_BIN: what the other gateway does otherwise"
  if [ -n "${WARDEN_BENCH_OTHER_BIN:-}" ]; then
    [ ${#compare_flags[@]} -eq 0 ] || die "WARDEN_BENCH_OTHER_BIN is a gateway already built: WARDEN_BENCH_OTHER_FLAGS cannot apply to it"
    [ -f "$WARDEN_BENCH_OTHER_BIN/warden-gateway" ] || die "WARDEN_BENCH_OTHER_BIN: no warden-gateway in $WARDEN_BENCH_OTHER_BIN"
    [ -x "$WARDEN_BENCH_OTHER_BIN/warden-gateway" ] || die "WARDEN_BENCH_OTHER_BIN: $WARDEN_BENCH_OTHER_BIN/warden-gateway is not executable"
  fi
  [ "${compare_flags[*]}" != "${release_flags[*]}" ] \
    || die "WARDEN_BENCH_OTHER_FLAGS replace the release build's own (${release_flags[*]}): these are the same; --static-swift-stdlib -Xswiftc -O builds without the optimisation"
  for index in "${!compare_env[@]}"; do
    # The word itself is never printed: a mistyped one may hold a value.
    [[ "${compare_env[$index]}" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "WARDEN_BENCH_OTHER_ENV: word $((index + 1)) is not NAME=VALUE"
    compare_names+=("${compare_env[$index]%%=*}")
  done
fi

say "building (release build of warden-bench and the gateway, vault, policy and approvals services; debug build of the services)"
for product in warden-bench warden-gateway warden-vault warden-policy warden-approvals warden-audit; do
  # (Linking Foundation statically warns of its use of mktemp: not ours, and harmless there.)
  swift build -c release "${release_flags[@]}" --product "$product" 2>&1 \
    | { grep -vE "swift-distributed-tracing|CMakeLists.txt|use of .mktemp. is dangerous" || true; } || die "swift build failed"
done
swift build 2>&1 | { grep -vE "swift-distributed-tracing|CMakeLists.txt" || true; } || die "swift build failed"
release=$(swift build -c release --show-bin-path)
debug=$(swift build --show-bin-path)
start_private_servers "$work"
# One random password for every service's database role (a part run alone; the full run sets its own).
database_passwords() {
  password=$(random_secret)
  export WARDEN_DB_PASSWORD_GATEWAY=$password WARDEN_DB_PASSWORD_VAULT=$password WARDEN_DB_PASSWORD_POLICY=$password \
    WARDEN_DB_PASSWORD_APPROVALS=$password WARDEN_DB_PASSWORD_AUDIT=$password
}

# Developers (WARDEN_BENCH_PROFILE=1): perf profiles of processes while a part runs (perf numbers,
# not benchmark numbers: profiling slows the run). `profile_start SECONDS NAME PID [NAME PID …]`
# records each into /tmp/warden-perf-NAME.data; `profile_report NAME…` waits and prints them.
profile_pids=()
profile_start() {
  [ -n "${WARDEN_BENCH_PROFILE:-}" ] || return 0
  local seconds=$1
  shift
  while [ $# -ge 2 ]; do
    perf record -F 499 -g -p "$2" -o "/tmp/warden-perf-$1.data" -- sleep "$seconds" >"/tmp/warden-perf-$1.log" 2>&1 &
    profile_pids+=("$!")
    pids+=("$!")
    shift 2
  done
}
profile_report() {
  [ ${#profile_pids[@]} -gt 0 ] || return 0
  wait "${profile_pids[@]}" || true
  profile_pids=()
  local name
  for name in "$@"; do
    echo; echo "### perf: $name"
    { perf report -i "/tmp/warden-perf-$name.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -n "${WARDEN_BENCH_PROFILE_LINES:-60}"; } || true
    echo "(perf data kept in /tmp/warden-perf-$name.data)"
  done
}
# Observability: the same gateway (no auth, no call records, one stdio server) three times over —
# metrics on and tracing off (the default), tracing at 100% to a discarding OTLP receiver, metrics
# off — measured in alternating rounds. WARDEN_BENCH_ONLY=observability-throughput runs this part alone.
observability_run() {
  echo; echo "## Observability: metrics and tracing on the proxy path (release build, every process on both cores)"
  local servers="$work/obs-servers.json" sink_out="$work/otlp-sink.out"
  printf '{"servers": [{"id": "bench", "command": "%s", "args": ["mcp-server"]}]}' "$release/warden-bench" >"$servers"
  "$release/warden-bench" otlp-sink >"$sink_out" 2>>"$work/logs/bench-otlp-sink.log" &
  local sink_pid=$!
  pids+=("$sink_pid")
  for _ in $(seq 100); do grep -q '^http://' "$sink_out" 2>/dev/null && break; sleep 0.05; done
  local sink
  sink=$(grep -m1 '^http://' "$sink_out") || die "the OTLP sink did not start"
  WARDEN_POSTGRES_DATABASE=benchobs provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  # A gateway keeps, for its whole life, a few percent of speed or slowness of its own (where its
  # threads and memory fell): the rounds run against fresh processes in each epoch, started in a
  # rotated order, and the costs are reported over every epoch's rounds too.
  local epochs=${WARDEN_BENCH_OBS_EPOCHS:-3} epoch variant port index control=()
  [[ "$epochs" =~ ^[1-9][0-9]*$ ]] || die "WARDEN_BENCH_OBS_EPOCHS must be at least 1"
  local variants=(plain traced unmetered) outside=("${pids[@]}")
  # WARDEN_BENCH_OBS_CONTROL=1: the third gateway the same as the first (an A/A control, so that
  # "metrics cost" is the method's own bias and spread).
  if [ "${WARDEN_BENCH_OBS_CONTROL:-0}" = 1 ]; then
    control=(--control)
    echo "(A/A control: the third gateway has metrics on, the same as the first)"
  fi
  for epoch in $(seq "$epochs"); do
    echo; echo "### Epoch $epoch of $epochs"
    local -A url_of=() pid_of=()
    for index in 0 1 2; do
      variant=${variants[$(((index + epoch - 1) % 3))]}
      port=$(free_port)
      local extra=()
      # Exporting every 200 ms (not every second) so that a window's spans are sent within the
      # quiet that follows it (warden-bench's --settle-milliseconds), not in the next gateway's window.
      [ "$variant" = traced ] && extra=(WARDEN_OTLP_ENDPOINT="$sink" WARDEN_TRACE_SAMPLE_RATIO=1 OTEL_BSP_SCHEDULE_DELAY=200)
      [ "$variant" = unmetered ] && [ ${#control[@]} = 0 ] && extra=(WARDEN_BENCHMARK_NO_METRICS=true)
      env WARDEN_NATS_URL="$NATS_URL" WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT="$PG_PORT" WARDEN_POSTGRES_TLS=disable \
        WARDEN_POSTGRES_DATABASE=benchobs WARDEN_POSTGRES_PASSWORD="$password" WARDEN_HTTP_PORT="$port" WARDEN_LOG_LEVEL=error \
        WARDEN_AUTH_REQUIRED=false WARDEN_BENCHMARK_UNAUDITED=true WARDEN_MCP_SERVERS_FILE="$servers" "${extra[@]}" \
        "$release/warden-gateway" >>"$work/logs/bench-obs-gateway-$variant.log" 2>&1 &
      pids+=("$!")
      pid_of[$variant]=$!
      url_of[$variant]="http://127.0.0.1:$port/mcp"
    done
    # Where the three gateways spend their time, side by side (the first epoch; all three profiled
    # alike, so that profiling weighs on none of them more).
    [ "$epoch" = 1 ] && profile_start 150 plain "${pid_of[plain]}" traced "${pid_of[traced]}" unmetered "${pid_of[unmetered]}"
    "$release/warden-bench" observability --plain "${url_of[plain]}" --traced "${url_of[traced]}" --unmetered "${url_of[unmetered]}" \
      --pids "${pid_of[plain]},${pid_of[traced]},${pid_of[unmetered]}" --throughput-rounds "${WARDEN_BENCH_OBS_ROUNDS:-30}" \
      --rounds-file "$work/obs-rounds.txt" "${control[@]}" \
      || die "the observability benchmark failed (logs: $work/logs/bench-obs-gateway-*.log)"
    [ "$epoch" = 1 ] && profile_report plain traced unmetered
    for variant in "${variants[@]}"; do kill -TERM "${pid_of[$variant]}" 2>/dev/null || true; done
    for variant in "${variants[@]}"; do wait "${pid_of[$variant]}" 2>/dev/null || true; done
    pids=("${outside[@]}")
  done
  echo "(the rounds' rates, a line a round: metrics on, tracing at 100%, the third gateway)"
  cat "$work/obs-rounds.txt"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
# The release gateway ready for valgrind: $work/warden-gateway-nodebug (valgrind 3.19 cannot read
# Swift 6's DWARF 5: a copy without debug info, symbols kept) and $work/nosigsuspend.so (valgrind
# crashes when libdispatch parks Swift's async main thread in sigsuspend: a shim parks it in
# nanosleep instead; Benchmarks/HotPath/nosigsuspend.c, for counts only).
prepare_valgrind() {
  objcopy --strip-debug "${1:-$release/warden-gateway}" "$work/warden-gateway-nodebug" || die "objcopy (binutils) is needed to count instructions"
  clang -shared -fPIC -O2 -o "$work/nosigsuspend.so" "$root/Benchmarks/HotPath/nosigsuspend.c" || die "cannot build the valgrind shim"
}
# Waits until the gateway under valgrind (port $1, process $2, log $3) is ready.
wait_for_valgrind_gateway() {
  local port=$1 pid=$2 log=$3 deadline=$((SECONDS + 300))
  until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "the gateway under valgrind stopped (logs: $log)"
    [ $SECONDS -lt $deadline ] || die "the gateway under valgrind was not ready within 300 s (logs: $log)"
    sleep 1
  done
}
# Tracing's and metrics' cost in instructions, which this machine's noise does not move: the gateway
# (no auth, no call records, a fast Streamable HTTP server behind it) under callgrind with tracing
# off, at 100% (to the discarding OTLP sink, the exporter running during the count), and with
# metrics off too. Part of WARDEN_BENCH_ONLY=observability; alone with
# WARDEN_BENCH_ONLY=observability-instructions.
observability_instructions_run() {
  echo; echo "## Observability: instructions per proxied call with tracing off, at 100%, and metrics off (callgrind, release build)"
  local fast_port_file="$work/trace-fast.port" sink_out="$work/trace-sink.out" servers="$work/trace-servers.json"
  node "$root/Benchmarks/HotPath/fast-mcp-server.mjs" --port-file "$fast_port_file" --quiet >>"$work/logs/bench-trace-fast.log" 2>&1 &
  pids+=("$!")
  "$release/warden-bench" otlp-sink >"$sink_out" 2>>"$work/logs/bench-trace-sink.log" &
  pids+=("$!")
  for _ in $(seq 100); do [ -s "$fast_port_file" ] && grep -q '^http://' "$sink_out" 2>/dev/null && break; sleep 0.05; done
  [ -s "$fast_port_file" ] || die "the fast MCP server did not start (logs: $work/logs/bench-trace-fast.log)"
  local fast sink
  fast="http://127.0.0.1:$(cat "$fast_port_file")/mcp"
  sink=$(grep -m1 '^http://' "$sink_out") || die "the OTLP sink did not start"
  printf '{"servers": [{"id": "fast", "url": "%s"}]}' "$fast" >"$servers"
  WARDEN_POSTGRES_DATABASE=benchtrace provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  prepare_valgrind
  local variant port gateway_pid extra
  for variant in off on unmetered; do
    mkdir -p "$work/callgrind-trace-$variant"
    port=$(free_port)
    extra=()
    [ "$variant" = on ] && extra=(WARDEN_OTLP_ENDPOINT="$sink" WARDEN_TRACE_SAMPLE_RATIO=1)
    # WARDEN_BENCH_OBS_CONTROL=1: the third gateway the same as the first (an A/A control).
    [ "$variant" = unmetered ] && [ "${WARDEN_BENCH_OBS_CONTROL:-0}" != 1 ] && extra=(WARDEN_BENCHMARK_NO_METRICS=true)
    env WARDEN_NATS_URL="$NATS_URL" WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT="$PG_PORT" WARDEN_POSTGRES_TLS=disable \
      WARDEN_POSTGRES_DATABASE=benchtrace WARDEN_POSTGRES_PASSWORD="$password" WARDEN_HTTP_PORT="$port" WARDEN_LOG_LEVEL=error \
      WARDEN_AUTH_REQUIRED=false WARDEN_BENCHMARK_UNAUDITED=true WARDEN_MCP_SERVERS_FILE="$servers" "${extra[@]}" \
      LD_PRELOAD="$work/nosigsuspend.so" valgrind --tool=callgrind --instr-atstart=no \
      --callgrind-out-file="$work/callgrind-trace-$variant/callgrind.out.%p" "$work/warden-gateway-nodebug" \
      >>"$work/logs/bench-trace-callgrind-$variant.log" 2>&1 &
    gateway_pid=$!
    pids+=("$gateway_pid")
    local setup="tracing $variant"
    [ "$variant" = unmetered ] && setup="tracing off, metrics off"
    say "waiting for the gateway under valgrind ($setup; slow to start)"
    wait_for_valgrind_gateway "$port" "$gateway_pid" "$work/logs/bench-trace-callgrind-$variant.log"
    python3 "$root/Benchmarks/HotPath/hotpath.py" --fast "$fast" --own "$fast" --gateway "http://127.0.0.1:$port/mcp" \
      --gateway-pid "$gateway_pid" --token "" --callgrind-only --callgrind-url "http://127.0.0.1:$port/mcp" \
      --callgrind-pid "$gateway_pid" --callgrind-dir "$work/callgrind-trace-$variant" --calls "${WARDEN_BENCH_CALLGRIND_CALLS:-2000}" \
      --callgrind-setup "no authentication, no call records, $setup" || die "counting instructions failed"
    kill -KILL "$gateway_pid" 2>/dev/null || true
    if [ -n "${WARDEN_BENCH_KEEP_CALLGRIND:-}" ]; then
      mkdir -p "$WARDEN_BENCH_KEEP_CALLGRIND/trace-$variant"
      cp "$work/callgrind-trace-$variant"/callgrind.out.* "$WARDEN_BENCH_KEEP_CALLGRIND/trace-$variant/"
    fi
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
# Waits for the gateway at $1 (admin token $2; its log $3), then makes an org "bench" whose policy
# allows everything and trusts tools on first use, with an agent; prints a token of that agent.
bench_agent_token() {
  local url=$1 admin_token=$2 log=$3 deadline=$((SECONDS + 120)) owner agent
  until WARDEN_ADMIN_TOKEN=$admin_token "$debug/warden" org create bench --url "$url" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "the gateway at $url did not start (logs: $log)"
    sleep 0.2
  done
  printf 'rules:\n  - {id: all, effect: allow, tools: ["*"], prompts: ["*"], resources: ["*"]}\n' >"$work/allow-all.yaml"
  owner=$(WARDEN_ADMIN_TOKEN=$admin_token "$debug/warden" user add --org bench --email bench@bench.example --role owner --url "$url")
  agent=$(WARDEN_ADMIN_TOKEN=$admin_token "$debug/warden" agent add --org bench --name bench --owner "$owner" --url "$url")
  WARDEN_ADMIN_TOKEN=$admin_token "$debug/warden" policy apply --org bench -f "$work/allow-all.yaml" --url "$url" >/dev/null
  WARDEN_ADMIN_TOKEN=$admin_token "$debug/warden" tool trust --org bench first-use --url "$url" >/dev/null
  WARDEN_ADMIN_TOKEN=$admin_token "$debug/warden" token issue --org bench --agent "$agent" --url "$url"
}

# The hot path (issue #10): a fast MCP server (Node built-ins only) directly, and through a mesh
# with authentication, policy and audit on, over Streamable HTTP and over stdio, in both protocol
# eras, driven by wrk; our own bench server beside it as a second direct baseline; every process on
# both cores. Then the gateway's instructions per proxied call, counted by callgrind in a second
# gateway run under valgrind. WARDEN_BENCH_ONLY=hotpath runs this part alone.
hotpath_run() {
  echo; echo "## Hot path: tools/call directly and through Warden, a fast server behind it (release build, every process on both cores)"
  local fast_port_file="$work/fast.port" own_out="$work/own-server.out" servers="$work/hotpath-servers.json"
  node "$root/Benchmarks/HotPath/fast-mcp-server.mjs" --port-file "$fast_port_file" --quiet >>"$work/logs/bench-fast-server.log" 2>&1 &
  pids+=("$!")
  "$release/warden-bench" mcp-server --transport streamable-http >"$own_out" 2>>"$work/logs/bench-own-server.log" &
  pids+=("$!")
  for _ in $(seq 100); do [ -s "$fast_port_file" ] && grep -q '^http://' "$own_out" 2>/dev/null && break; sleep 0.05; done
  [ -s "$fast_port_file" ] || die "the fast MCP server did not start (logs: $work/logs/bench-fast-server.log)"
  local fast="http://127.0.0.1:$(cat "$fast_port_file")/mcp" own
  own=$(grep -m1 '^http://' "$own_out") || die "our bench server did not start"
  printf '{"servers": [{"id": "fast", "url": "%s"}, {"id": "faststdio", "command": "node", "args": ["%s", "--stdio", "--quiet"]}]}' \
    "$fast" "$root/Benchmarks/HotPath/fast-mcp-server.mjs" >"$servers"
  WARDEN_POSTGRES_DATABASE=benchhotpath provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  local common=(WARDEN_NATS_URL="$NATS_URL" WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT="$PG_PORT" WARDEN_POSTGRES_TLS=disable
    WARDEN_POSTGRES_DATABASE=benchhotpath WARDEN_POSTGRES_PASSWORD="$password" WARDEN_LOG_LEVEL=error)
  local service
  for service in vault policy audit; do
    env "${common[@]}" WARDEN_HTTP_PORT="$(free_port)" "$release/warden-$service" >>"$work/logs/bench-hotpath-$service.log" 2>&1 &
    pids+=("$!")
  done
  local admin_token gateway_port gateway_pid agent_token
  admin_token=$(random_secret)
  gateway_port=$(free_port)
  # Both gateways below are the same deployment (one issuer), so the agent's token works on both.
  common+=(WARDEN_PUBLIC_URL="http://127.0.0.1:$gateway_port")
  env "${common[@]}" WARDEN_HTTP_PORT="$gateway_port" WARDEN_ADMIN_TOKEN="$admin_token" WARDEN_MCP_SERVERS_FILE="$servers" \
    "$release/warden-gateway" >>"$work/logs/bench-hotpath-gateway.log" 2>&1 &
  gateway_pid=$!
  pids+=("$gateway_pid")
  agent_token=$(bench_agent_token "http://127.0.0.1:$gateway_port" "$admin_token" "$work/logs/bench-hotpath-gateway.log")
  python3 "$root/Benchmarks/HotPath/hotpath.py" --fast "$fast" --own "$own" --gateway "http://127.0.0.1:$gateway_port/mcp" \
    --gateway-pid "$gateway_pid" --token "$agent_token" --seconds "${WARDEN_BENCH_HOTPATH_SECONDS:-10}" || die "the hot-path benchmark failed (logs: $work/logs/bench-hotpath-*.log)"
  # The same gateway again under callgrind (the first one stopped, so only one relays the servers);
  # then, with WARDEN_BENCH_HOTPATH_OTHER_BIN (a directory holding another build's warden-gateway,
  # which must expect this commit's schema), that one the same way, for instructions side by side.
  kill -TERM "$gateway_pid" 2>/dev/null || true
  wait "$gateway_pid" 2>/dev/null || true
  local counted=("$release") index
  [ -n "$hotpath_other_bin" ] && counted+=("$hotpath_other_bin")
  [ ${#hotpath_other_env[@]} -gt 0 ] && counted+=("$release")
  for index in "${!counted[@]}"; do
    local added=() setup="authentication, policy and audit on"
    if [ "$index" -gt 0 ] && [ ${#hotpath_other_env[@]} -gt 0 ]; then
      added=("${hotpath_other_env[@]}")
      setup="authentication, policy and audit on, but $(IFS=' '; echo "${hotpath_other_env[*]%%=*}") set"
      echo; echo "(the same gateway with ${hotpath_other_env[*]%%=*} set as WARDEN_BENCH_HOTPATH_OTHER_ENV says)"
    elif [ ${#counted[@]} -gt 1 ]; then
      echo; echo "(the gateway in ${counted[$index]})"
    fi
    local callgrind_dir="$work/callgrind-$index" callgrind_port
    mkdir -p "$callgrind_dir"
    callgrind_port=$(free_port)
    prepare_valgrind "${counted[$index]}/warden-gateway"
    # The added words come before the run's own port, token and servers, which they cannot replace.
    env "${common[@]}" "${added[@]}" WARDEN_HTTP_PORT="$callgrind_port" WARDEN_ADMIN_TOKEN="$admin_token" WARDEN_MCP_SERVERS_FILE="$servers" \
      LD_PRELOAD="$work/nosigsuspend.so" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$callgrind_dir/callgrind.out.%p" \
      "$work/warden-gateway-nodebug" >>"$work/logs/bench-hotpath-callgrind.log" 2>&1 &
    local callgrind_pid=$!
    pids+=("$callgrind_pid")
    say "waiting for the gateway under valgrind (slow to start)"
    wait_for_valgrind_gateway "$callgrind_port" "$callgrind_pid" "$work/logs/bench-hotpath-callgrind.log"
    python3 "$root/Benchmarks/HotPath/hotpath.py" --fast "$fast" --own "$own" --gateway "http://127.0.0.1:$callgrind_port/mcp" \
      --gateway-pid "$callgrind_pid" --token "$agent_token" --callgrind-only --callgrind-url "http://127.0.0.1:$callgrind_port/mcp" \
      --callgrind-pid "$callgrind_pid" --callgrind-dir "$callgrind_dir" --calls "${WARDEN_BENCH_CALLGRIND_CALLS:-2000}" \
      --callgrind-setup "$setup" || die "counting instructions failed (logs: $work/logs/bench-hotpath-callgrind.log)"
    # Developers: the dumps, for callgrind_annotate (where the instructions go).
    [ -n "${WARDEN_BENCH_PROFILE:-}" ] && rm -rf "/tmp/warden-callgrind-$index" && cp -r "$callgrind_dir" "/tmp/warden-callgrind-$index" \
      && echo "(callgrind dumps kept in /tmp/warden-callgrind-$index)"
    # Under the shim the gateway may not finish exiting: stopped outright (its counts are dumped).
    kill -KILL "$callgrind_pid" 2>/dev/null || true
    wait "$callgrind_pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
# Auditing's cost: the same gateway recording every request and recording nothing (one stdio
# server, no auth), the audit service storing what the first records; every process on both cores.
auditing_run() {
  echo; echo "## Auditing: what recording every call costs the proxy path, and where (release build, every process on both cores)"
  local servers="$work/audit-servers.json"
  printf '{"servers": [{"id": "bench", "command": "%s", "args": ["mcp-server"]}]}' "$release/warden-bench" >"$servers"
  WARDEN_POSTGRES_DATABASE=benchauditcost provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  local common=(WARDEN_NATS_URL="$NATS_URL" WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT="$PG_PORT" WARDEN_POSTGRES_TLS=disable
    WARDEN_POSTGRES_DATABASE=benchauditcost WARDEN_POSTGRES_PASSWORD="$password" WARDEN_LOG_LEVEL=error)
  env "${common[@]}" WARDEN_HTTP_PORT="$(free_port)" "$release/warden-audit" >>"$work/logs/bench-auditcost-audit.log" 2>&1 &
  local audit_pid=$!
  pids+=("$audit_pid")
  local urls=() gateway_pids=() variant port
  for variant in unaudited audited; do
    port=$(free_port)
    local extra=()
    [ "$variant" = unaudited ] && extra=(WARDEN_BENCHMARK_UNAUDITED=true)
    env "${common[@]}" WARDEN_HTTP_PORT="$port" WARDEN_AUTH_REQUIRED=false WARDEN_MCP_SERVERS_FILE="$servers" "${extra[@]}" \
      "$release/warden-gateway" >>"$work/logs/bench-auditcost-gateway-$variant.log" 2>&1 &
    pids+=("$!")
    gateway_pids+=("$!")
    urls+=("http://127.0.0.1:$port/mcp")
  done
  # Where the audited gateway, the audit service and NATS spend their time.
  profile_start 60 gateway "${gateway_pids[1]}" audit "$audit_pid" nats "$(cat "$work/run/nats.pid")"
  "$release/warden-bench" audit-cost --unaudited "${urls[0]}" --audited "${urls[1]}" \
    --gateway-pids "$(IFS=,; echo "${gateway_pids[*]}")" --audit-pid "$audit_pid" --nats-pid "$(cat "$work/run/nats.pid")" \
    --postgres-pid "$(head -n 1 "$work/postgres/postmaster.pid")" \
    || die "the auditing benchmark failed (logs: $work/logs/bench-auditcost-*.log)"
  profile_report gateway audit nats
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
# Sets the caller's pin_gateway and pin_outside (taskset commands) for cores $1 and $2; both empty
# when $1 is "" (every process on both cores).
pin_cores() {
  pin_gateway=()
  pin_outside=()
  if [ -n "$1" ]; then pin_gateway=(taskset -c "$1"); pin_outside=(taskset -c "$2"); fi
}
# Starts `warden-bench mcp-server` over Streamable HTTP (pinned as the caller's `pin_outside` says),
# its URL written to $1 and its log to $2; sets the caller's http_server (the URL) and http_server_pid.
start_bench_http_server() {
  "${pin_outside[@]}" "$release/warden-bench" mcp-server --transport streamable-http >"$1" 2>>"$2" &
  http_server_pid=$!
  pids+=("$http_server_pid")
  for _ in $(seq 100); do grep -q '^http://' "$1" 2>/dev/null && break; sleep 0.05; done
  http_server=$(grep -m1 '^http://' "$1") || die "the HTTP bench server did not start (logs: $2)"
}
# Policy's cost (issue #13): the same authenticated gateway deciding every call by policy (warm
# cache) and checking its tool pin, and deciding nothing (WARDEN_BENCHMARK_UNDECIDED), and for scale
# without authentication; none records calls, so that only policy differs between the first two.
# $1 is a label, $2 and $3 the gateway's and the rest's core ("" for both cores), $4 a database name.
policy_cost_run() {
  local label=$1 gateway_cpu=$2 outside_cpu=$3 database=$4
  local pin_gateway pin_outside
  pin_cores "$gateway_cpu" "$outside_cpu"
  echo; echo "## Policy on the proxy path, $label: an authenticated gateway deciding every call and deciding nothing (release build)"
  local servers="$work/policy-cost-servers-$database.json" http_server http_server_pid
  start_bench_http_server "$work/policy-cost-http-$database.out" "$work/logs/bench-policycost-http.log"
  printf '{"servers": [{"id": "bench", "command": "%s", "args": ["mcp-server"]}, {"id": "benchhttp", "url": "%s"}]}' \
    "$release/warden-bench" "$http_server" >"$servers"
  WARDEN_POSTGRES_DATABASE=$database provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  local common=(WARDEN_NATS_URL="$NATS_URL" WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT="$PG_PORT" WARDEN_POSTGRES_TLS=disable
    WARDEN_POSTGRES_DATABASE="$database" WARDEN_POSTGRES_PASSWORD="$password" WARDEN_LOG_LEVEL=error)
  local service
  for service in vault policy audit; do
    env "${common[@]}" WARDEN_HTTP_PORT="$(free_port)" "${pin_outside[@]}" "$release/warden-$service" >>"$work/logs/bench-policycost-$service.log" 2>&1 &
    pids+=("$!")
  done
  local admin_token decided_port agent_token urls=() gateway_pids=() variant port
  admin_token=$(random_secret)
  decided_port=$(free_port)
  local ports=("$decided_port" "$(free_port)" "$(free_port)") index=0
  # One deployment (one issuer), so the agent's token works on every gateway.
  common+=(WARDEN_PUBLIC_URL="http://127.0.0.1:$decided_port" WARDEN_BENCHMARK_UNAUDITED=true WARDEN_MCP_SERVERS_FILE="$servers")
  for variant in decided undecided open; do
    local extra=()
    port=${ports[$index]}
    index=$((index + 1))
    case $variant in
      decided) extra=(WARDEN_ADMIN_TOKEN="$admin_token") ;;
      undecided) extra=(WARDEN_BENCHMARK_UNDECIDED=true) ;;
      open) extra=(WARDEN_AUTH_REQUIRED=false) ;;
    esac
    env "${common[@]}" WARDEN_HTTP_PORT="$port" "${extra[@]}" "${pin_gateway[@]}" "$release/warden-gateway" \
      >>"$work/logs/bench-policycost-gateway-$variant.log" 2>&1 &
    pids+=("$!")
    gateway_pids+=("$!")
    urls+=("http://127.0.0.1:$port/mcp")
  done
  agent_token=$(bench_agent_token "http://127.0.0.1:$decided_port" "$admin_token" "$work/logs/bench-policycost-gateway-decided.log")
  WARDEN_BENCH_AGENT_TOKEN=$agent_token "${pin_outside[@]}" "$release/warden-bench" policy-cost --decided "${urls[0]}" \
    --undecided "${urls[1]}" --open "${urls[2]}" --pids "$(IFS=,; echo "${gateway_pids[*]}")" \
    || die "the policy-cost benchmark failed (logs: $work/logs/bench-policycost-*.log)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
if [ "${WARDEN_BENCH_ONLY:-}" = policy-cost ]; then
  database_passwords
  export WARDEN_VAULT_KEY
  WARDEN_VAULT_KEY=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
  policy_cost_run "every process on both cores" "" "" benchpolicycost1
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    policy_cost_run "the gateways on core 1; load generator, HTTP server and services on core 0" 1 0 benchpolicycost2
  fi
  exit 0
fi
# One gateway against another built or set up otherwise: the release build against the same gateway
# built with WARDEN_BENCH_OTHER_FLAGS (swift build arguments used instead of the release build's own
# --static-swift-stdlib -Xswiftc -cross-module-optimization: "--static-swift-stdlib -Xswiftc -O", say,
# for the gateway without cross-module optimisation; built in WARDEN_BENCH_OTHER_SCRATCH, default $root/.build-bench-other) and/or run with
# WARDEN_BENCH_OTHER_ENV (NAME=VALUE words, no spaces within one, e.g. a WARDEN_BENCHMARK_* switch;
# never a secret: only the names are printed, but the values reach the process's command line), or
# against the warden-gateway in WARDEN_BENCH_OTHER_BIN (another commit's release build, say, which
# must expect the database schema this commit's provisioning makes, and was built with the flags
# that commit's make bench used: before 2026-12-01 without cross-module optimisation); all
# without authentication or call records, tools/call to the fast HTTP server and to a stdio server in
# alternating rounds (WARDEN_BENCH_COMPARE_ROUNDS throughput rounds, default 12, even), with each
# gateway's CPU per call. WARDEN_BENCH_ONLY=compare runs this part alone.
compare_run() {
  local scratch=${WARDEN_BENCH_OTHER_SCRATCH:-$root/.build-bench-other} other_bin=${WARDEN_BENCH_OTHER_BIN:-$release}
  local other_flags=("${compare_flags[@]}") other_env=("${compare_env[@]}") names=("${compare_names[@]}")
  if [ -n "${WARDEN_BENCH_OTHER_BIN:-}" ]; then
    echo; echo "## The gateway as built against $other_bin/warden-gateway, run with ${names[*]:-the same environment} set otherwise (release builds)"
  else
    echo; echo "## The gateway built with ${release_flags[*]} against itself built with ${other_flags[*]:-the same flags} and run with ${names[*]:-the same environment} set otherwise (release builds)"
  fi
  if [ ${#other_flags[@]} -gt 0 ]; then
    say "building the other gateway (release, ${other_flags[*]}) in $scratch"
    swift build -c release --scratch-path "$scratch" "${other_flags[@]}" --product warden-gateway 2>&1 \
      | { grep -vE "swift-distributed-tracing|CMakeLists.txt" || true; } || die "swift build failed"
    other_bin=$(swift build -c release --scratch-path "$scratch" "${other_flags[@]}" --show-bin-path)
  fi
  local fast_port_file="$work/compare-fast.port" servers="$work/compare-servers.json"
  node "$root/Benchmarks/HotPath/fast-mcp-server.mjs" --port-file "$fast_port_file" --quiet >>"$work/logs/bench-compare-fast.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do [ -s "$fast_port_file" ] && break; sleep 0.05; done
  [ -s "$fast_port_file" ] || die "the fast MCP server did not start (logs: $work/logs/bench-compare-fast.log)"
  printf '{"servers": [{"id": "fast", "url": "http://127.0.0.1:%s/mcp"}, {"id": "bench", "command": "%s", "args": ["mcp-server"]}]}' \
    "$(cat "$fast_port_file")" "$release/warden-bench" >"$servers"
  WARDEN_POSTGRES_DATABASE=benchcompare provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  local index port gateway_pids=() gateways=() labels=("as built" "otherwise")
  for index in 0 1; do
    local binary=$release extra=()
    [ "$index" = 1 ] && binary=$other_bin && extra=("${other_env[@]}")
    port=$(free_port)
    env WARDEN_NATS_URL="$NATS_URL" WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT="$PG_PORT" WARDEN_POSTGRES_TLS=disable \
      WARDEN_POSTGRES_DATABASE=benchcompare WARDEN_POSTGRES_PASSWORD="$password" WARDEN_HTTP_PORT="$port" WARDEN_LOG_LEVEL=error \
      WARDEN_AUTH_REQUIRED=false WARDEN_BENCHMARK_UNAUDITED=true WARDEN_MCP_SERVERS_FILE="$servers" "${extra[@]}" \
      "$binary/warden-gateway" >>"$work/logs/bench-compare-gateway-$index.log" 2>&1 &
    pids+=("$!")
    gateway_pids+=("$!")
    gateways+=(--gateway "${labels[$index]}=http://127.0.0.1:$port/mcp")
  done
  "$release/warden-bench" compare "${gateways[@]}" --pids "$(IFS=,; echo "${gateway_pids[*]}")" --tool fast__echo --tool bench__echo \
    --throughput-rounds "${WARDEN_BENCH_COMPARE_ROUNDS:-12}" || die "the comparison failed (logs: $work/logs/bench-compare-*.log)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
# Part 14: what one downstream request costs the client side (see the top of this file).
downstream_client_run() {
  echo; echo "## The downstream client: Warden's against async-http-client (as the gateway used it), release build"
  local fast_port_file="$work/fast.port"
  node "$root/Benchmarks/HotPath/fast-mcp-server.mjs" --port-file "$fast_port_file" --quiet >>"$work/logs/bench-fast-server.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do [ -s "$fast_port_file" ] && break; sleep 0.05; done
  [ -s "$fast_port_file" ] || die "the fast MCP server did not start (logs: $work/logs/bench-fast-server.log)"
  local fast="http://127.0.0.1:$(cat "$fast_port_file")/mcp"
  "$release/warden-bench" downstream-client --url "$fast" || die "the downstream client benchmark failed"
  # Instructions: each client alone for 200 and for 2,200 requests; the difference over 2,000 leaves
  # out start-up, connecting and shutting down. valgrind 3.19 cannot read Swift 6's DWARF 5 (a copy
  # without debug info) and crashes on libdispatch's sigsuspend (the shim, as for the gateway).
  objcopy --strip-debug "$release/warden-bench" "$work/warden-bench-nodebug" || die "objcopy (binutils) is needed to count instructions"
  clang -shared -fPIC -O2 -o "$work/nosigsuspend.so" "$root/Benchmarks/HotPath/nosigsuspend.c" || die "cannot build the valgrind shim"
  echo; echo "| client | instructions a request (callgrind, 2,200 requests less 200) |"; echo "|---|---|"
  local client count total counts=()
  for client in ahc warden; do
    counts=()
    for count in 200 2200; do
      total=$(LD_PRELOAD="$work/nosigsuspend.so" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$work/warden-bench-nodebug" downstream-client --url "$fast" --only "$client" --requests "$count" 2>&1 >/dev/null \
        | sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p')
      [ -n "$total" ] || die "callgrind counted nothing for the $client client"
      counts+=("$total")
    done
    printf '| %s | %s |\n' "$([ $client = ahc ] && echo async-http-client || echo "Warden's client")" \
      "$(((counts[1] - counts[0]) / 2000))"
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
if [ "${WARDEN_BENCH_ONLY:-}" = downstream-client ]; then
  downstream_client_run
  exit 0
fi
if [ "${WARDEN_BENCH_ONLY:-}" = compare ]; then
  database_passwords
  compare_run
  exit 0
fi
if [ "${WARDEN_BENCH_ONLY:-}" = auditing ]; then
  database_passwords
  auditing_run
  exit 0
fi
if [ "${WARDEN_BENCH_ONLY:-}" = hotpath ]; then
  database_passwords
  export WARDEN_VAULT_KEY
  WARDEN_VAULT_KEY=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
  hotpath_run
  exit 0
fi
if [[ "${WARDEN_BENCH_ONLY:-}" =~ ^observability(-throughput|-instructions)?$ ]]; then
  database_passwords
  [ "${WARDEN_BENCH_ONLY:-}" != observability-instructions ] && observability_run
  [ "${WARDEN_BENCH_ONLY:-}" != observability-throughput ] && observability_instructions_run
  exit 0
fi

if [ "${WARDEN_BENCH_ONLY:-}" != mcp ]; then
if [ "${WARDEN_BENCH_ONLY:-}" != vault ] && [ "${WARDEN_BENCH_ONLY:-}" != approvals ] && [ "${WARDEN_BENCH_ONLY:-}" != oauth ]; then
echo; echo "## Agent token validation (release build)"
"$release/warden-bench" token

echo; echo "## NATS request/reply between two processes"
"$release/warden-bench" nats --url "$NATS_URL"
fi

export WARDEN_DB_PASSWORD_GATEWAY WARDEN_DB_PASSWORD_VAULT WARDEN_DB_PASSWORD_POLICY WARDEN_DB_PASSWORD_APPROVALS WARDEN_DB_PASSWORD_AUDIT
password=$(random_secret)
export WARDEN_VAULT_KEY
WARDEN_VAULT_KEY=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
for s in GATEWAY VAULT POLICY APPROVALS AUDIT; do printf -v "WARDEN_DB_PASSWORD_$s" '%s' "$password"; done

if [ "${WARDEN_BENCH_ONLY:-}" = "" ] || [ "${WARDEN_BENCH_ONLY:-}" = approvals ]; then
echo; echo "## Approvals: decision to result (one release-build approvals service, its own database)"
WARDEN_POSTGRES_DATABASE=benchapprovals provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
  WARDEN_POSTGRES_DATABASE=benchapprovals WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$(free_port) WARDEN_LOG_LEVEL=error \
  "$release/warden-approvals" >>"$work/logs/bench-approvals.log" 2>&1 &
approvals_pid=$!
pids+=("$approvals_pid")
"$release/warden-bench" approvals --url "$NATS_URL" || die "the approvals benchmark failed (logs: $work/logs/bench-approvals.log)"
kill -TERM "$approvals_pid" 2>/dev/null || true
wait "$approvals_pid" 2>/dev/null || true
fi
[ "${WARDEN_BENCH_ONLY:-}" = approvals ] && exit 0

if [ "${WARDEN_BENCH_ONLY:-}" = "" ] || [ "${WARDEN_BENCH_ONLY:-}" = audit ]; then
echo; echo "## Audit: ingestion into PostgreSQL with the hash chain, and verification (one release-build audit service, its own database)"
WARDEN_POSTGRES_DATABASE=benchaudit provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
  WARDEN_POSTGRES_DATABASE=benchaudit WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$(free_port) WARDEN_LOG_LEVEL=error \
  "$release/warden-audit" >>"$work/logs/bench-audit.log" 2>&1 &
audit_pid=$!
# Verification checks what the vault signed.
WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
  WARDEN_POSTGRES_DATABASE=benchaudit WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$(free_port) WARDEN_LOG_LEVEL=error \
  "$release/warden-vault" >>"$work/logs/bench-audit-vault.log" 2>&1 &
audit_vault_pid=$!
pids+=("$audit_pid" "$audit_vault_pid")
"$release/warden-bench" audit --url "$NATS_URL" --id-rounds "$audit_id_rounds" || die "the audit benchmark failed (logs: $work/logs/bench-audit.log)"
kill -TERM "$audit_pid" "$audit_vault_pid" 2>/dev/null || true
wait "$audit_pid" "$audit_vault_pid" 2>/dev/null || true
fi
[ "${WARDEN_BENCH_ONLY:-}" = audit ] && exit 0

if [ "${WARDEN_BENCH_ONLY:-}" = "" ] || [ "${WARDEN_BENCH_ONLY:-}" = oauth ]; then
echo; echo "## OAuth: the token endpoint through a release-build mesh (its own database)"
WARDEN_POSTGRES_DATABASE=benchoauth provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
oauth_port=$(free_port)
oauth_token=$(random_secret)
oauth_pids=()
for service in "${WARDEN_SERVICES[@]}"; do
  if [ "$service" = gateway ]; then port=$oauth_port; else port=$(free_port); fi
  WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
    WARDEN_POSTGRES_DATABASE=benchoauth WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$port WARDEN_LOG_LEVEL=error \
    WARDEN_ADMIN_TOKEN=$oauth_token WARDEN_PUBLIC_URL="http://127.0.0.1:$oauth_port" \
    "$release/warden-$service" >>"$work/logs/bench-oauth-$service.log" 2>&1 &
  oauth_pids+=($!)
done
pids+=("${oauth_pids[@]}")
deadline=$((SECONDS + 120))
until "$debug/warden" status --url "http://127.0.0.1:$oauth_port" --timeout 1 >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || die "the OAuth benchmark's mesh was not ready within 120 s (logs: $work/logs)"
  sleep 0.1
done
"$release/warden-bench" oauth --gateway "http://127.0.0.1:$oauth_port" --admin-token "$oauth_token" --nats-url "$NATS_URL" \
  || die "the OAuth benchmark failed (logs: $work/logs/bench-oauth-*.log)"
for pid in "${oauth_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${oauth_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
fi
[ "${WARDEN_BENCH_ONLY:-}" = oauth ] && exit 0

echo; echo "## Policy: rule evaluation in process, and decisions over NATS (one release-build policy service, its own database)"
"$release/warden-bench" policy
WARDEN_POSTGRES_DATABASE=benchpolicy provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
  WARDEN_POSTGRES_DATABASE=benchpolicy WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$(free_port) WARDEN_LOG_LEVEL=error \
  "$release/warden-policy" >>"$work/logs/bench-policy.log" 2>&1 &
policy_pid=$!
pids+=("$policy_pid")
"$release/warden-bench" policy-nats --url "$NATS_URL" || die "the policy benchmark failed (logs: $work/logs/bench-policy.log)"
kill -TERM "$policy_pid" 2>/dev/null || true
wait "$policy_pid" 2>/dev/null || true
[ "${WARDEN_BENCH_ONLY:-}" = policy ] && exit 0

echo; echo "## Vault: secrets over NATS (one release-build vault, its own database)"
WARDEN_POSTGRES_DATABASE=benchvault provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
  WARDEN_POSTGRES_DATABASE=benchvault WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$(free_port) WARDEN_LOG_LEVEL=error \
  "$release/warden-vault" >>"$work/logs/bench-vault.log" 2>&1 &
pids=($!)
"$release/warden-bench" vault --url "$NATS_URL" || die "the vault benchmark failed (logs: $work/logs/bench-vault.log)"
# What the read's parts cost on their own: PostgreSQL answering the same prepared query (pgbench,
# one client over loopback TCP) and a NATS round trip between two processes.
cat >"$work/secret-read.sql" <<'SQL'
SELECT v.version, v.ciphertext, v.wrapped_data_key, v.org_key_version, s.deleted_at, s.expires_at
FROM vault.secrets s JOIN vault.secret_versions v ON v.org = s.org AND v.path = s.path
WHERE s.org = 'bench' AND s.path = 'load/0/1' AND v.version = s.current_version;
SQL
PGPASSWORD=$PG_ADMIN_PASSWORD "$(pg_bin)/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U warden_admin -n -M prepared -c 1 -T 5 \
  -f "$work/secret-read.sql" benchvault 2>/dev/null | sed -n 's/^latency average = \(.*\)/the same query alone (pgbench, prepared, one client): average \1/p'
# The same kind of statement through PostgresNIO, as the vault's pool runs it and otherwise.
"$release/warden-bench" postgres-query --port "$PG_PORT" --user warden_admin --password "$PG_ADMIN_PASSWORD" --database benchvault \
  --requests 5000 || die "the PostgresNIO benchmark failed"
[ "${WARDEN_BENCH_ONLY:-}" = vault ] && "$release/warden-bench" nats --url "$NATS_URL" --requests 5000 --seconds 2 | sed -n 1,3p
kill -TERM "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true
pids=()
[ "${WARDEN_BENCH_ONLY:-}" = vault ] && exit 0

echo; echo "## Mesh start-up (five services, until the gateway reports all ready)"
times=()
for run in 1 2 3; do
  WARDEN_POSTGRES_DATABASE="bench$run" provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"
  gateway_port=$(free_port)
  start=$(date +%s%N)
  pids=()
  for service in "${WARDEN_SERVICES[@]}"; do
    if [ "$service" = gateway ]; then port=$gateway_port; else port=$(free_port); fi
    WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
      WARDEN_POSTGRES_DATABASE="bench$run" WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$port WARDEN_LOG_LEVEL=error \
      "$debug/warden-$service" >>"$work/logs/bench-$service.log" 2>&1 &
    pids+=($!)
  done
  deadline=$((SECONDS + 120))
  until "$debug/warden" status --url "http://127.0.0.1:$gateway_port" --timeout 1 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "the mesh was not ready within 120 s (logs: $work/logs)"
    sleep 0.05
  done
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
echo "mesh ready after launch: median ${median} ms (runs: ${sorted% })"
else
  # WARDEN_BENCH_ONLY=mcp: just the MCP proxy runs (each needs a database of its own).
  password=$(random_secret)
  export WARDEN_DB_PASSWORD_GATEWAY WARDEN_DB_PASSWORD_VAULT WARDEN_DB_PASSWORD_POLICY WARDEN_DB_PASSWORD_APPROVALS WARDEN_DB_PASSWORD_AUDIT
  for s in GATEWAY VAULT POLICY APPROVALS AUDIT; do printf -v "WARDEN_DB_PASSWORD_$s" '%s' "$password"; done
  export WARDEN_VAULT_KEY
  WARDEN_VAULT_KEY=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
  for run in 1 2; do WARDEN_POSTGRES_DATABASE="bench$run" provision "$work" "$PG_PORT" "$PG_ADMIN_PASSWORD"; done
fi

# MCP proxy, twice: every process sharing both cores, then with the gateway (and the stdio servers
# it launches) on a core of its own, as deployed, while the load generator and the HTTP server share
# the other core in both the direct and the gateway runs.
mcp_proxy_run() {
  # A database of its own per run: the registry keeps the servers (and URLs) a previous run seeded.
  local label=$1 gateway_cpu=$2 outside_cpu=$3 database=$4
  local pin_gateway pin_outside
  pin_cores "$gateway_cpu" "$outside_cpu"
  echo; echo "## MCP proxy, $label: tools/call through the gateway vs directly (release build)"
  local servers="$work/servers.json" http_server http_server_pid
  start_bench_http_server "$work/bench-http-$database.out" "$work/logs/bench-http.log"
  # The same two servers again with a credential from the vault (an env value, a header), so that
  # injection and the leak guard are measured side by side with the runs without them.
  printf '{"servers": [{"id": "bench", "command": "%s", "args": ["mcp-server"]}, {"id": "benchhttp", "url": "%s"},
    {"id": "benchcred", "command": "%s", "args": ["mcp-server"], "env": {"BENCH_KEY": "secret://bench/key"}},
    {"id": "benchhttpcred", "url": "%s", "headers": {"Authorization": "Bearer ${secret://bench/key}"}}]}' \
    "$release/warden-bench" "$http_server" "$release/warden-bench" "$http_server" >"$servers"
  WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
    WARDEN_POSTGRES_DATABASE=$database WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$(free_port) WARDEN_LOG_LEVEL=error \
    "${pin_outside[@]}" "$release/warden-vault" >>"$work/logs/bench-proxy-vault.log" 2>&1 &
  local vault_pid=$!
  pids=("$vault_pid" "$http_server_pid")
  echo "### Credentials (the vault on the load generator's core)"
  "${pin_outside[@]}" "$release/warden-bench" credentials --url "$NATS_URL" || die "the credentials benchmark failed (logs: $work/logs/bench-proxy-vault.log)"
  echo
  local gateway_port
  gateway_port=$(free_port)
  WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
    WARDEN_POSTGRES_DATABASE=$database WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$gateway_port WARDEN_LOG_LEVEL=error \
    WARDEN_AUTH_REQUIRED=false WARDEN_MCP_SERVERS_FILE=$servers "${pin_gateway[@]}" "$release/warden-gateway" >>"$work/logs/bench-proxy-gateway.log" 2>&1 &
  local gateway_pid=$!
  # The same gateway recording nothing, for the side-by-side "with auditing" runs; the audit service
  # stores what the others record, as deployed (on the load generator's core when pinned).
  local unaudited_port
  unaudited_port=$(free_port)
  WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
    WARDEN_POSTGRES_DATABASE=$database WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$unaudited_port WARDEN_LOG_LEVEL=error \
    WARDEN_AUTH_REQUIRED=false WARDEN_BENCHMARK_UNAUDITED=true WARDEN_MCP_SERVERS_FILE=$servers "${pin_gateway[@]}" "$release/warden-gateway" \
    >>"$work/logs/bench-proxy-gateway-unaudited.log" 2>&1 &
  local unaudited_pid=$!
  WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
    WARDEN_POSTGRES_DATABASE=$database WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$(free_port) WARDEN_LOG_LEVEL=error \
    "${pin_outside[@]}" "$release/warden-audit" >>"$work/logs/bench-proxy-audit.log" 2>&1 &
  local audit_pid=$!
  pids=("$gateway_pid" "$http_server_pid" "$vault_pid" "$unaudited_pid" "$audit_pid")
  local perf_pid=""
  if [ -n "${WARDEN_BENCH_PROFILE:-}" ] && [ -z "$gateway_cpu" ]; then
    # Developers: where the gateway spends its time under this load (perf numbers, not benchmark numbers).
    perf record -F 499 -g -p "$gateway_pid" -o "$work/perf.data" -- sleep 40 >/dev/null 2>&1 &
    perf_pid=$!
  fi
  # A second gateway fronting the same servers with authentication and policy on (and its policy
  # service), for the side-by-side "with policy" runs: an org whose policy allows everything and
  # trusts tools on first use, and a token of its agent.
  local policy_port decided_port admin_token agent_token
  policy_port=$(free_port)
  decided_port=$(free_port)
  admin_token=$(random_secret)
  WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
    WARDEN_POSTGRES_DATABASE=$database WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$policy_port WARDEN_LOG_LEVEL=error \
    "${pin_outside[@]}" "$release/warden-policy" >>"$work/logs/bench-proxy-policy.log" 2>&1 &
  local policy_pid=$!
  WARDEN_NATS_URL=$NATS_URL WARDEN_POSTGRES_HOST=127.0.0.1 WARDEN_POSTGRES_PORT=$PG_PORT WARDEN_POSTGRES_TLS=disable \
    WARDEN_POSTGRES_DATABASE=$database WARDEN_POSTGRES_PASSWORD=$password WARDEN_HTTP_PORT=$decided_port WARDEN_LOG_LEVEL=error \
    WARDEN_ADMIN_TOKEN=$admin_token WARDEN_MCP_SERVERS_FILE=$servers "${pin_gateway[@]}" "$release/warden-gateway" \
    >>"$work/logs/bench-proxy-gateway-policy.log" 2>&1 &
  local decided_pid=$!
  pids=("$gateway_pid" "$http_server_pid" "$vault_pid" "$policy_pid" "$decided_pid" "$unaudited_pid" "$audit_pid")
  agent_token=$(bench_agent_token "http://127.0.0.1:$decided_port" "$admin_token" "$work/logs/bench-proxy-gateway-policy.log")
  WARDEN_BENCH_AGENT_TOKEN=$agent_token "${pin_outside[@]}" "$release/warden-bench" mcp --url "http://127.0.0.1:$gateway_port/mcp" \
    --http-server "$http_server" --credentials --policy-url "http://127.0.0.1:$decided_port/mcp" \
    --unaudited-url "http://127.0.0.1:$unaudited_port/mcp"
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -n "${WARDEN_BENCH_PROFILE_LINES:-60}"
  fi
  kill -TERM "$gateway_pid" "$http_server_pid" "$vault_pid" "$policy_pid" "$decided_pid" "$unaudited_pid" "$audit_pid" 2>/dev/null || true
  wait "$gateway_pid" "$http_server_pid" "$vault_pid" "$policy_pid" "$decided_pid" "$unaudited_pid" "$audit_pid" 2>/dev/null || true
  pids=()
}
mcp_proxy_run "all processes on both cores" "" "" bench1
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  mcp_proxy_run "gateway on core 1; load generator and HTTP server on core 0" 1 0 bench2
else
  warn "taskset or a second core is missing: skipped the run with the gateway on its own core"
fi
if [ "${WARDEN_BENCH_ONLY:-}" = "" ]; then
  policy_cost_run "every process on both cores" "" "" benchpolicycost1
  hotpath_run
fi
exit 0
