"""Calls one tool COUNT times at once in one session through Warden (official Python SDK), and prints
what came back as JSON: {"texts": [...], "errors": [...]}.

Usage: mcp_concurrent_check.py URL SERVER TOOL COUNT
"""
import asyncio
import json
import sys

from mcp import Client
from run_check import client_target, run_check


async def main() -> None:
    url, server, tool, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    async with Client(client_target(url)) as client:
        results = await asyncio.gather(*(client.call_tool(f"{server}__{tool}", {}) for _ in range(count)))
    texts = ["\n".join(getattr(item, "text", "") for item in result.content) for result in results]
    print(json.dumps({"texts": texts, "errors": [text for text, result in zip(texts, results) if result.is_error]}))


run_check(main)
