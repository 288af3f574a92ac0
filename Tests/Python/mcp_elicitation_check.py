"""Calls a tool that elicits input, answering the elicitation as a user would (official Python SDK).

Usage: mcp_elicitation_check.py TARGET MODE TOOL
TARGET is a URL or "stdio:" + JSON [command, args...]. Prints {"text": <the tool's text>, "asked": [messages]}.
"""
import asyncio
import json
import sys

import mcp_types as types
from mcp import Client, StdioServerParameters


async def main() -> None:
    target, mode, tool = sys.argv[1], sys.argv[2], sys.argv[3]
    if target.startswith("stdio:"):
        command = json.loads(target[len("stdio:"):])
        target = StdioServerParameters(command=command[0], args=command[1:])
    asked = []

    async def on_elicit(context, params):  # noqa: ARG001 - the SDK's callback signature
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with Client(target, mode=mode, elicitation_callback=on_elicit) as client:
        result = await client.call_tool(tool, {})
        print(json.dumps({"text": result.content[0].text if result.content else None, "isError": result.is_error, "asked": asked}))


try:
    asyncio.run(main())
except Exception as error:  # noqa: BLE001 - the test reads the message
    causes = [error]
    while any(isinstance(c, BaseExceptionGroup) for c in causes):
        causes = [inner for c in causes for inner in (c.exceptions if isinstance(c, BaseExceptionGroup) else [c])]
    for cause in causes:
        print(f"error: {type(cause).__name__}: {cause}", file=sys.stderr)
    sys.exit(1)
