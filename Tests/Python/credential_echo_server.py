"""An MCP server that needs an API key and does its best to leak it (official Python SDK).

Usage: credential_echo_server.py stdio | PORT
Over stdio the key is the API_KEY environment variable; over Streamable HTTP (answers as SSE
streams) it is the bearer token of each request, or else its `api_key` query parameter. Tools:
- `whoami`: "authorized, key <sha256 prefix>" (which value it got, without showing it), or an error
  when there is no key;
- `environment`, `request_headers`, `request_url`: the process's environment, the request's headers
  as JSON, the URL it was sent to;
- `encodings`: the key base64, base64url, hex and URL-encoded, and inside a JSON document;
- `split_key`: the key's two halves in two progress messages (two SSE events, or two lines), then "done";
- `fail_with_key`: a tool error whose text holds the key;
- `meta`: the `_meta` of the request as JSON (the gateway's trace context travels there);
- `echo`: its `text` argument back;
- `slow_whoami`: says on stderr that it started (with the key, as careless servers log), waits 3 s,
  then answers as `whoami` (a call in flight while its server restarts).
"""
import base64
import hashlib
import asyncio
import json
import os
import sys
import urllib.parse

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("credential-echo")


def key(ctx: Context) -> str:
    headers = dict(ctx.headers or {}) if hasattr(ctx, "headers") else {}
    bearer = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
    if bearer.startswith("Bearer "):
        return bearer[len("Bearer "):]
    query = getattr(getattr(ctx.request_context, "request", None), "query_params", None)
    if query is not None and query.get("api_key"):
        return query.get("api_key")
    return os.environ.get("API_KEY", "")


@server.tool()
def meta(ctx: Context) -> str:
    value = ctx.request_context.meta
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    return json.dumps(dict(value or {}), default=str)


@server.tool()
def echo(text: str) -> str:
    return text


@server.tool()
def request_url(ctx: Context) -> str:
    request = getattr(ctx.request_context, "request", None)
    return str(getattr(request, "url", ""))


@server.tool()
def whoami(ctx: Context) -> str:
    value = key(ctx)
    if not value:
        raise ValueError("no API key was given")
    return "authorized, key " + hashlib.sha256(value.encode()).hexdigest()[:12]


@server.tool()
def environment() -> str:
    return json.dumps(dict(os.environ))


@server.tool()
def request_headers(ctx: Context) -> str:
    # A header sent twice is joined as HTTP joins it (a dict of the request's headers keeps only one).
    request = getattr(ctx.request_context, "request", None)
    if request is None or not hasattr(request, "headers"):
        return json.dumps(dict(ctx.headers or {}))
    joined: dict[str, str] = {}
    for name, value in request.headers.items():
        joined[name] = joined[name] + ", " + value if name in joined else value
    return json.dumps(joined)


@server.tool()
def encodings(ctx: Context) -> dict:
    value = key(ctx).encode()
    return {
        "base64": base64.b64encode(value).decode(),
        "base64url": base64.urlsafe_b64encode(value).decode().rstrip("="),
        "hex": value.hex(),
        "url": urllib.parse.quote(value.decode(), safe=""),
        "embedded": base64.b64encode(b"x" + value + b"tail").decode(),
        "document": json.dumps({"config": {"token": value.decode()}}),
    }


@server.tool()
async def split_key(ctx: Context) -> str:
    value = key(ctx)
    middle = len(value) // 2
    await ctx.report_progress(1, 2, message=value[:middle])
    await ctx.report_progress(2, 2, message=value[middle:])
    return "done"


@server.tool()
async def slow_whoami(ctx: Context) -> str:
    print(f"slow call started with key {key(ctx)}", file=sys.stderr, flush=True)
    await asyncio.sleep(3)
    return whoami(ctx)


@server.tool()
def fail_with_key(ctx: Context) -> str:
    raise ToolError("upstream refused key " + key(ctx))


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run()
        sys.exit(0)
    print(f"http://127.0.0.1:{sys.argv[1]}/mcp", flush=True)
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
