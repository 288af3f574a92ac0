"""A Streamable HTTP MCP server (official Python SDK) on a given port: `python http_echo_server.py PORT`.

Tool `echo(text)` answers "echo: <text> (<boot id>)": the boot id tells which life of the process
answered, so a test can restart it on the same port and see that its session was forgotten.
"""
import sys
import uuid

from mcp.server.mcpserver import MCPServer

boot = uuid.uuid4().hex[:8]
server = MCPServer("http-echo")


@server.tool()
def echo(text: str) -> str:
    return f"echo: {text} ({boot})"


if __name__ == "__main__":
    print(f"http://127.0.0.1:{sys.argv[1]}/mcp", flush=True)
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]), json_response=True)
