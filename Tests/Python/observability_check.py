"""A scripted run of tool calls through Warden as an agent would make them (official Python SDK):
each CALL is SERVER__TOOL=COUNT, called COUNT times with {"text": TEXT} when the tool is `echo`,
with no arguments otherwise. Prints {"SERVER__TOOL": [is_error, ...]} as JSON.

Usage: observability_check.py URL TEXT CALL [CALL ...]
"""
import json
import sys

from mcp import Client
from run_check import client_target, run_check


async def main() -> None:
    url, text, calls = sys.argv[1], sys.argv[2], sys.argv[3:]
    outcomes = {}
    async with Client(client_target(url)) as client:
        for call in calls:
            name, count = call.rsplit("=", 1)
            arguments = {"text": text} if name.endswith("__echo") else {}
            for _ in range(int(count)):
                try:
                    result = await client.call_tool(name, arguments)
                    outcomes.setdefault(name, []).append(bool(result.is_error))
                except Exception as error:  # noqa: BLE001 - a JSON-RPC error is an outcome here
                    outcomes.setdefault(name, []).append(f"error: {error}")
    print(json.dumps(outcomes))


run_check(main)
