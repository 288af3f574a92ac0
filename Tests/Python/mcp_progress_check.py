"""Calls `<server>__slow` through an MCP endpoint with a progress callback (official Python SDK).

Usage: mcp_progress_check.py URL MODE SERVER
Prints {"protocol", "text", "progress": [[progress, total], ...]} as JSON.
"""
import json
import sys

from mcp import Client
from run_check import client_target, run_check


async def main() -> None:
    url, mode, server = sys.argv[1], sys.argv[2], sys.argv[3]
    async with Client(client_target(url), mode=mode) as client:
        seen = []

        async def on_progress(progress, total, message):  # noqa: ARG001 - the SDK's callback signature
            seen.append([progress, total])

        result = await client.call_tool(f"{server}__slow", {"ms": 300}, progress_callback=on_progress)
        print(json.dumps({"protocol": client.session.protocol_version, "text": result.content[0].text, "progress": seen}))


run_check(main)
