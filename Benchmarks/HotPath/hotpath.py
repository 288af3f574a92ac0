#!/usr/bin/env python3
"""The hot-path benchmark (issue #10), run by `WARDEN_BENCH_ONLY=hotpath make bench`.

scripts/bench.sh starts a fast MCP server (fast-mcp-server.mjs, Node built-ins only), our own
(`warden-bench mcp-server`), and a release-build mesh whose gateway fronts the fast server over
Streamable HTTP (`fast`) and over stdio (`faststdio`) with authentication, policy and audit on.
This script drives them with wrk (tools-call.lua checks every reply) and prints:

- throughput at 32 connections for 10 s, directly and through Warden, in both protocol eras, with
  the gateway's CPU per call (its /proc CPU time over the run, divided by the calls completed);
- latency at one connection (p50, p99) and what Warden adds to it;
- with --callgrind-pid: instructions the gateway executes per proxied call (valgrind's callgrind,
  counting only while a fixed number of sequential calls run, less what it executes idle over as
  long again), a figure that noise cannot hide.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TICKS = os.sysconf("SC_CLK_TCK")
TEXT = "hotpath-echo-0123456789"


def cpu_seconds(pid):
    """User + system CPU of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def post(url, body, headers):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("POST", parts.path, json.dumps(body), headers)
    response = connection.getresponse()
    payload = response.read()
    session = response.getheader("Mcp-Session-Id")
    connection.close()
    return response.status, payload, session


def base_headers(token):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def handshake_session(url, token):
    """An initialized handshake-era session: its Mcp-Session-Id."""
    headers = base_headers(token)
    status, payload, session = post(url, {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "hotpath", "version": "1"}},
    }, headers)
    if status != 200 or not session:
        sys.exit(f"hotpath: initialize at {url} answered {status}: {payload[:300]!r}")
    headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    return session


def wrk(url, era, tool, token, connections, seconds, session=None):
    env = dict(os.environ, HOTPATH_ERA=era, HOTPATH_TOOL=tool, HOTPATH_TOKEN=token or "", HOTPATH_SESSION=session or "")
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", os.path.join(HERE, "tools-call.lua"), url],
        env=env, capture_output=True, text=True, check=False)
    result = None
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result = dict(item.split("=", 1) for item in line.split()[1:])
        if line.startswith("FIRST_BAD "):
            print(f"  ({url}, {era}) a reply that was not the echo: {line[10:]}", file=sys.stderr)
    if result is None:
        sys.exit(f"hotpath: wrk against {url} printed no result:\n{out.stdout}\n{out.stderr}")
    return {key: float(value) for key, value in result.items()}


class Target:
    def __init__(self, label, url, tool, token=None, pid=None, era_support=("handshake", "modern")):
        self.label, self.url, self.tool, self.token, self.pid, self.eras = label, url, tool, token, pid, era_support
        self.sessions = {}

    def run(self, era, connections, seconds):
        if era == "handshake" and era not in self.sessions:
            self.sessions[era] = handshake_session(self.url, self.token)
        before = cpu_seconds(self.pid) if self.pid else None
        result = wrk(self.url, era, self.tool, self.token, connections, seconds, self.sessions.get(era))
        if before is not None:
            result["cpu_ms_per_call"] = (cpu_seconds(self.pid) - before) * 1000 / max(result["calls"], 1)
        result["rate"] = result["calls"] / result["seconds"]
        if result["bad"] or result["socket_errors"]:
            # A rate counting refused or failed calls would be a lie: no numbers then.
            sys.exit(f"hotpath: {self.label} ({era}): {int(result['bad'])} bad replies, {int(result['socket_errors'])} socket errors")
        return result


def sequential_calls(url, era, tool, token, count, session):
    """`count` tools/call posts over one kept-alive connection, each reply checked."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    headers = base_headers(token)
    if era == "modern":
        headers.update({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool})
        params = {"name": tool, "arguments": {"text": TEXT},
                  "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}
    else:
        headers.update({"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": session})
        params = {"name": tool, "arguments": {"text": TEXT}}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
    for _ in range(count):
        connection.request("POST", parts.path, body, headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200 or TEXT.encode() not in payload or b'"error"' in payload:
            raise RuntimeError(f"a call under callgrind answered {response.status}: {payload[:300]!r}")
    connection.close()


def warm(url, era, tool, token, session):
    """A few calls until they succeed: under valgrind a server's first start can take long."""
    deadline = time.monotonic() + 180
    while True:
        try:
            return sequential_calls(url, era, tool, token, 50, session)
        except (RuntimeError, OSError) as error:
            if time.monotonic() > deadline:
                sys.exit(f"hotpath: {tool} never answered under callgrind: {error}")
            time.sleep(2)


def callgrind(args, token):
    """Instructions per call: counted by callgrind only while `calls` sequential calls run, less what
    the gateway does idle over as long again (timers, keep-alives, background work: under valgrind a
    slower machine stretches the counted time, and that work with it, so the raw count moves with
    the machine's speed)."""
    pid, count = str(args.callgrind_pid), args.calls
    control = lambda *flags: subprocess.run(["callgrind_control", *flags, pid], capture_output=True, text=True, check=True)
    out_dir = args.callgrind_dir

    def counted(action):
        """The instructions callgrind counts while `action` runs, and how long it ran."""
        control("-z")
        control("-i", "on")
        started = time.monotonic()
        action()
        elapsed = time.monotonic() - started
        control("-i", "off")
        before = set(os.listdir(out_dir))
        control("-d")
        for _ in range(100):
            fresh = sorted(set(os.listdir(out_dir)) - before)
            if fresh:
                totals = None
                with open(os.path.join(out_dir, fresh[-1])) as f:
                    for line in f:
                        # The last of them: a file still being written may hold an earlier one.
                        if line.startswith("totals:") or line.startswith("summary:"):
                            totals = int(line.split()[1])
                if totals is not None:
                    return totals, elapsed
            time.sleep(0.1)
        sys.exit("hotpath: callgrind wrote no totals")

    def calls(era, tool, session):
        try:
            sequential_calls(args.callgrind_url, era, tool, token, count, session)
        except (RuntimeError, OSError, http.client.HTTPException) as error:
            sys.exit(f"hotpath: a call under callgrind failed: {error!r}")

    rows = []
    # The HTTP path only: under valgrind the gateway's stdio servers do not get ready in time.
    for label, tool, era in [("HTTP server", "fast__echo", "handshake"), ("HTTP server", "fast__echo", "modern")]:
        session = handshake_session(args.callgrind_url, token) if era == "handshake" else None
        warm(args.callgrind_url, era, tool, token, session)  # pools, caches, sessions
        total, elapsed = counted(lambda: calls(era, tool, session))
        # Work the calls left behind (the last audit batch, a connection closing) falls in the idle
        # window and is subtracted with it: a bias of well under one call's work over 2,000 calls.
        idle, _ = counted(lambda: time.sleep(elapsed))
        if total <= 0 or idle >= total:
            sys.exit(f"hotpath: implausible callgrind counts ({total} with calls, {idle} idle)")
        rows.append((label, era, (total - idle) / count, total / count, idle / count, elapsed))
    print()
    print(f"### Instructions per proxied call (callgrind, {count} sequential calls each, {args.callgrind_setup})")
    print()
    print("| gateway → | era | instructions per call, less idle | as counted | idle over as long, a call | counted over |")
    print("|---|---|---|---|---|---|")
    for label, era, net, raw, idle, elapsed in rows:
        print(f"| {label} | {era} | {net:,.0f} | {raw:,.0f} | {idle:,.0f} | {elapsed:.1f} s |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", required=True, help="the fast server's /mcp URL")
    parser.add_argument("--own", required=True, help="our own bench server's /mcp URL")
    parser.add_argument("--gateway", required=True, help="the gateway's /mcp URL")
    parser.add_argument("--gateway-pid", type=int, required=True)
    parser.add_argument("--token", required=True, help="an agent token for the gateway")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--callgrind-url")
    parser.add_argument("--callgrind-pid", type=int)
    parser.add_argument("--callgrind-dir")
    parser.add_argument("--callgrind-setup", default="authentication, policy and audit on", help="what the counted gateway runs with")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--callgrind-only", action="store_true", help="only count instructions (the gateway runs under valgrind)")
    args = parser.parse_args()
    if args.callgrind_only:
        return callgrind(args, args.token)

    fast = Target("fast server, directly", args.fast, "echo")
    own = Target("our bench server, directly", args.own, "echo", era_support=("handshake",))
    via_http = Target("Warden → fast server (Streamable HTTP)", args.gateway, "fast__echo", args.token, args.gateway_pid)
    via_stdio = Target("Warden → fast server (stdio)", args.gateway, "faststdio__echo", args.token, args.gateway_pid)

    # Warm every path (sessions, pools, policy and credential caches) before measuring.
    for target in (fast, own, via_http, via_stdio):
        for era in target.eras:
            target.run(era, 8, 1)

    print(f"### Throughput, 32 connections, {args.seconds} s each (wrk; every reply checked)")
    print()
    print("| path | era | calls/s | % of direct (fast server) | gateway CPU per call | p50 | p99 |")
    print("|---|---|---|---|---|---|---|")
    direct = {}
    for target in (fast, own, via_http, via_stdio):
        for era in target.eras:
            result = target.run(era, 32, args.seconds)
            if target is fast:
                direct[era] = result["rate"]
            share = f"{100 * result['rate'] / direct[era]:.0f}%" if era in direct else "—"
            cpu = f"{result['cpu_ms_per_call']:.3f} ms" if "cpu_ms_per_call" in result else "—"
            print(f"| {target.label} | {era} | {result['rate']:,.0f} | {share} | {cpu} | {result['p50_ms']:.2f} ms | {result['p99_ms']:.2f} ms |")

    print()
    print(f"### Latency, one connection, {args.seconds} s each")
    print()
    print("| path | era | p50 | p99 | added p50 | added p99 |")
    print("|---|---|---|---|---|---|")
    base = {}
    for target in (fast, via_http, via_stdio):
        for era in target.eras:
            result = target.run(era, 1, args.seconds)
            if target is fast:
                base[era] = result
                added = ("—", "—")
            else:
                added = (f"{result['p50_ms'] - base[era]['p50_ms']:.3f} ms", f"{result['p99_ms'] - base[era]['p99_ms']:.3f} ms")
            print(f"| {target.label} | {era} | {result['p50_ms']:.3f} ms | {result['p99_ms']:.3f} ms | {added[0]} | {added[1]} |")

    if args.callgrind_pid:
        callgrind(args, args.token)


if __name__ == "__main__":
    main()
