"""What every check shares: where its client connects (`client_target`), and running its async main
(`run_check`: on failure prints the innermost causes, which task groups wrap, and exits 1)."""
import asyncio
import json
import os
import sys


def client_target(target: str):
    """The SDK client's target for TARGET: "stdio:" + JSON [command, args...] launches a process with
    this environment (`warden connect` reads WARDEN_AGENT_TOKEN from it); a URL is connected to over
    HTTP, with `Authorization: Bearer $MCP_BEARER_TOKEN` when that is set (an agent token)."""
    if target.startswith("stdio:"):
        from mcp import StdioServerParameters

        command = json.loads(target[len("stdio:"):])
        return StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    if os.environ.get("MCP_BEARER_TOKEN"):
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = httpx2.AsyncClient(headers={"Authorization": "Bearer " + os.environ["MCP_BEARER_TOKEN"]}, timeout=httpx2.Timeout(30, read=300))
        return streamable_http_client(target, http_client=http)
    return target


def run_check(main) -> None:
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - the test reads the message
        causes = [error]
        while any(isinstance(c, BaseExceptionGroup) for c in causes):
            causes = [inner for c in causes for inner in (c.exceptions if isinstance(c, BaseExceptionGroup) else [c])]
        for cause in causes:
            print(f"error: {type(cause).__name__}: {cause}", file=sys.stderr)
        sys.exit(1)
