"""Runs `make up` as a person would, in a terminal: waits for the ready message, presses Ctrl-C,
checks that everything stopped, runs it again and checks that the data was reused, then stops a
running mesh with `make down`. Prints "make-up: N passed, N failed"; exits non-zero on a failure.

The mesh's state goes to a private directory (WARDEN_STATE_DIR) so a developer's .warden/ is untouched.
"""
import os
import pty
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
state = tempfile.mkdtemp(prefix="warden-up.")
results = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok: " if ok else "FAILED: ") + name + ("" if ok else f"\n{detail[-3000:]}"), flush=True)


def leftovers():
    """Processes started for this run: their command line or environment names the state directory
    (services inherit WARDEN_STATE_DIR from make up)."""
    found = []
    marker = state.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            found.append(entry)
    return found


class Terminal:
    """`scripts/mesh.sh up` in a pseudo-terminal, as if typed by a user."""

    def __init__(self, extra=None):
        env = dict(os.environ, WARDEN_STATE_DIR=state, WARDEN_GATEWAY_PORT_OVERRIDE=str(free_port()), TERM="dumb", **(extra or {}))
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(root)
            os.execvpe("make", ["make", "--no-print-directory", "up"], env)
        self.output = ""

    def read_until(self, text, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.output:
                return True
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    return text in self.output
                if not chunk:
                    return text in self.output
                self.output += chunk.decode(errors="replace")
            if self.exited(block=False) is not None and text not in self.output:
                return False
        return text in self.output

    def exited(self, block):
        if getattr(self, "status", None) is not None:
            return self.status
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return None
        self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def ctrl_c(self, timeout):
        os.write(self.fd, b"\x03")
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.read_until("\0never\0", 0.2)
            if self.exited(block=False) is not None:
                return True
        return False

    def kill(self):
        if self.exited(block=False) is None:
            os.kill(self.pid, signal.SIGKILL)
            self.exited(block=True)


# The first make up runs in a shell that exported every local password (as after sourcing mesh.env):
# the services must still get only their own.
exported = {f"WARDEN_DB_PASSWORD_{name}": secrets.token_hex(16) for name in ["GATEWAY", "VAULT", "POLICY", "APPROVALS", "AUDIT"]}
exported["PG_ADMIN_PASSWORD"] = secrets.token_hex(16)
first = Terminal(exported)
try:
    check("make up prints the ready message", first.read_until("Warden is ready", 300), first.output)
    check("the first make up creates a PostgreSQL cluster", "creating PostgreSQL cluster" in first.output, first.output)
    demo = os.path.join(state, "demo.env")
    settings = open(demo).read() if os.path.exists(demo) else ""
    check("make up writes demo.env (mode 0600) with the URL, admin and agent tokens",
          os.path.exists(demo) and (os.stat(demo).st_mode & 0o777) == 0o600
          and all(f"{name}=" in settings for name in ["WARDEN_URL", "WARDEN_ADMIN_TOKEN", "WARDEN_AGENT_TOKEN"]), first.output)
    check("make up prints an MCP client configuration", '"mcpServers"' in first.output, first.output)
    values = dict(line.split("=", 1) for line in settings.splitlines() if "=" in line and not line.startswith("#"))
    import json
    import urllib.error
    import urllib.request
    def initialize(token):
        request = urllib.request.Request(values.get("WARDEN_URL", "http://127.0.0.1:1") + "/mcp", method="POST", data=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}).encode(),
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0
    check("the demo agent's token opens an MCP session; no token gets 401",
          initialize(values.get("WARDEN_AGENT_TOKEN")) == 200 and initialize(None) == 401, first.output)
    # Each service's environment holds its own database and NATS passwords and no other service's.
    mesh = dict(line.split("=", 1) for line in open(os.path.join(state, "mesh.env")).read().splitlines() if "=" in line and not line.startswith("#"))
    passwords = {name: value for name, value in mesh.items() if name.startswith(("WARDEN_DB_PASSWORD_", "WARDEN_NATS_PASSWORD_"))}
    exposed = {}
    for service in ["gateway", "vault", "policy", "approvals", "audit"]:
        try:
            pid = open(os.path.join(state, "run", f"{service}.pid")).read().strip()
            environ = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError as error:
            exposed[service] = f"cannot read its environment: {error}"
            continue
        own = passwords.get(f"WARDEN_DB_PASSWORD_{service.upper()}", "")
        own_nats = passwords.get(f"WARDEN_NATS_PASSWORD_{service.upper()}", "")
        others = [name for name, value in passwords.items() if value and value in environ and value not in (own, own_nats)]
        admin = mesh.get("PG_ADMIN_PASSWORD", "")
        if admin and admin in environ:
            others.append("PG_ADMIN_PASSWORD")
        if others or not own or own not in environ or not own_nats or own_nats not in environ:
            exposed[service] = f"others: {others}, own present: {bool(own) and own in environ}, own NATS: {bool(own_nats) and own_nats in environ}"
    check("each service's environment holds only its own database and NATS passwords", len(passwords) == 10 and not exposed, f"{exposed}")
    # The local mesh keeps PostgreSQL's durability: what people run first must not lose committed data.
    fsync = subprocess.run(["psql", "-h", "127.0.0.1", "-p", mesh.get("PG_PORT", "0"), "-U", "warden_admin", "-d", "postgres", "-tAc", "show fsync"],
                           capture_output=True, text=True, env=dict(os.environ, PGPASSWORD=mesh.get("PG_ADMIN_PASSWORD", "")))
    check("make up's PostgreSQL keeps fsync on", fsync.stdout.strip() == "on", fsync.stdout + fsync.stderr)
    check("Ctrl-C stops make up", first.ctrl_c(30), first.output)
    time.sleep(0.5)
    check("nothing is left running after Ctrl-C", not leftovers(), f"left: {leftovers()}\n{first.output}")
finally:
    first.kill()

second = Terminal()
try:
    check("a second make up is ready again", second.read_until("Warden is ready", 300), second.output)
    check("a second make up reuses its data", "creating PostgreSQL cluster" not in second.output, second.output)
    down = subprocess.run(["scripts/mesh.sh", "down"], cwd=root, env=dict(os.environ, WARDEN_STATE_DIR=state), capture_output=True, text=True)
    stopped = second.read_until("mesh stopped", 30)
    deadline = time.time() + 10
    while time.time() < deadline and second.exited(block=False) is None:
        time.sleep(0.2)
    check("make down stops a running mesh and its make up", stopped and second.exited(block=False) is not None and not leftovers(),
          down.stdout + down.stderr + second.output)
finally:
    second.kill()
    for pid in leftovers():
        os.kill(int(pid), signal.SIGKILL)
    shutil.rmtree(state, ignore_errors=True)

passed = sum(results)
print(f"make-up: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
