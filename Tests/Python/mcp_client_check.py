"""Connects to an MCP endpoint with the official Python SDK and prints what it saw, as JSON.

Usage: mcp_client_check.py URL MODE TOOL ARGUMENTS_JSON
MODE is the SDK's connect mode: "auto" (server/discover probe, then fallback) or "legacy".
Prints {"protocol": version, "tools": [names], "call": <CallToolResult as JSON>} on success; exits 1 with the error otherwise.
Also used with a stdio command instead of a URL ("stdio:" + JSON [command, args...]) to get the
direct result for comparison. With MCP_BEARER_TOKEN set, HTTP requests carry it as
`Authorization: Bearer …` (an agent token).
"""
import json
import sys

from mcp import Client
from run_check import client_target, run_check


async def main() -> None:
    target, mode, tool, arguments = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    server = client_target(target)
    async with Client(server, mode=mode) as client:
        tools = await client.list_tools()
        result = await client.call_tool(tool, arguments)
        print(json.dumps({
            "protocol": client.session.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "call": result.model_dump(mode="json", by_alias=True, exclude_none=True),
        }, sort_keys=True))


run_check(main)
