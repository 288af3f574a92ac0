"""Lists the tools and makes calls through Warden as an agent would (official Python SDK), and prints
what came back as JSON: {"tools": [names], "calls": [{"tool", "ok", "code", "message", "text"}]}.

Usage: mcp_policy_check.py URL CALLS  (CALLS: a JSON list of [tool, arguments])
"""
import json
import sys

from mcp import Client, MCPError
from run_check import client_target, run_check


async def main() -> None:
    url, calls = sys.argv[1], json.loads(sys.argv[2])
    report = {"tools": [], "calls": []}
    async with Client(client_target(url)) as client:
        listed = await client.list_tools()
        report["tools"] = sorted(tool.name for tool in listed.tools)
        for tool, arguments in calls:
            try:
                result = await client.call_tool(tool, arguments)
                text = "\n".join(getattr(item, "text", "") for item in result.content)
                report["calls"].append({"tool": tool, "ok": not result.is_error, "code": None, "message": None, "text": text})
            except MCPError as error:
                report["calls"].append({"tool": tool, "ok": False, "code": error.code, "message": error.message, "text": None})
    print(json.dumps(report))


run_check(main)
