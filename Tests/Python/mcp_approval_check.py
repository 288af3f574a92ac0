"""Calls one tool through Warden as an agent would (official Python SDK) and prints what came back
as JSON: {"ok", "isError", "text", "meta", "code", "message", "progress"} ("progress": how many
progress notifications arrived while the call waited).

Usage: mcp_approval_check.py URL TOOL ARGUMENTS [--progress]
"""
import json
import sys

from mcp import Client, MCPError
from run_check import client_target, run_check


async def main() -> None:
    url, tool, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)

    report = {"ok": False, "isError": None, "text": None, "meta": None, "code": None, "message": None, "progress": 0}
    async with Client(client_target(url)) as client:
        try:
            result = await client.call_tool(
                tool, arguments, read_timeout_seconds=180, progress_callback=on_progress if "--progress" in sys.argv else None
            )
            dumped = result.model_dump(by_alias=True, exclude_none=True)
            report.update(
                ok=not result.is_error,
                isError=bool(result.is_error),
                text="\n".join(getattr(item, "text", "") for item in result.content),
                meta=dumped.get("_meta"),
            )
        except MCPError as error:
            report.update(code=error.code, message=error.message)
    report["progress"] = len(progress)
    print(json.dumps(report))


run_check(main)
