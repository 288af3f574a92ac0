"""A stdio MCP server (official Python SDK) for approval tests. `send_mail` appends one line per
execution to the file named by $APPROVAL_RUNS_FILE and says how many times it ran, so a test can
count executions across retries, restarts and gateway replicas; `read_inbox` is harmless."""
import json
import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("approval-tools")


@server.tool()
def send_mail(to: str = "", subject: str = "") -> str:
    path = os.environ["APPROVAL_RUNS_FILE"]
    with open(path, "a") as runs:
        runs.write(json.dumps({"to": to, "subject": subject}) + "\n")
    with open(path) as runs:
        count = sum(1 for _ in runs)
    return f"sent {subject!r} to {to} (run {count})"


@server.tool()
def read_inbox() -> str:
    return "no new mail"


if __name__ == "__main__":
    server.run()
