"""Calls a tool that elicits input, answering the elicitation as a user would (official Python SDK).

Usage: mcp_elicitation_check.py TARGET MODE TOOL
TARGET is a URL or "stdio:" + JSON [command, args...]. Prints {"text": <the tool's text>, "asked": [messages]}.
"""
import json
import sys

import mcp_types as types
from mcp import Client
from run_check import client_target, run_check


async def main() -> None:
    target, mode, tool = sys.argv[1], sys.argv[2], sys.argv[3]
    asked = []

    async def on_elicit(context, params):  # noqa: ARG001 - the SDK's callback signature
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with Client(client_target(target), mode=mode, elicitation_callback=on_elicit) as client:
        result = await client.call_tool(tool, {})
        print(json.dumps({"text": result.content[0].text if result.content else None, "isError": result.is_error, "asked": asked}))


run_check(main)
