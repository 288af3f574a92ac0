"""A Streamable HTTP MCP server (official Python SDK) on a given port: `python http_echo_server.py PORT`.

Tool `echo(text)` answers "echo: <text> (<boot id>)": the boot id tells which life of the process
answered, so a test can restart it on the same port and see that its session was forgotten.
Tool `request_headers` answers the HTTP headers its request arrived with, as JSON (what a gateway
forwards), and `environment` the process's environment.
"""
import json
import os
import sys
import uuid

from mcp.server.mcpserver import Context, MCPServer

boot = uuid.uuid4().hex[:8]
server = MCPServer("http-echo")


@server.tool()
def echo(text: str) -> str:
    return f"echo: {text} ({boot})"


@server.tool()
def request_headers(ctx: Context) -> str:
    return json.dumps(dict(ctx.headers or {}))


@server.tool()
def environment() -> str:
    return json.dumps(dict(os.environ))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "stdio":
        server.run()
        sys.exit(0)
    print(f"http://127.0.0.1:{sys.argv[1]}/mcp", flush=True)
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]), json_response=True)
