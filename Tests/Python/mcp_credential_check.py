"""Calls tools of one server through Warden as an agent would (official Python SDK), with a progress
callback, and prints everything the client received as JSON: {tool: {"text", "error", "progress"}}.

Usage: mcp_credential_check.py URL SERVER TOOL [TOOL ...]
"""
import json
import sys

from mcp import Client
from run_check import client_target, run_check


async def main() -> None:
    url, server, tools = sys.argv[1], sys.argv[2], sys.argv[3:]
    received = {}
    async with Client(client_target(url)) as client:
        for tool in tools:
            progress = []

            async def on_progress(value, total, message):  # noqa: ARG001 - the SDK's callback signature
                progress.append(message)

            result = await client.call_tool(f"{server}__{tool}", {}, progress_callback=on_progress)
            texts = [getattr(item, "text", "") for item in result.content]
            received[tool] = {
                "text": "\n".join(texts),
                "structured": result.structured_content,
                "error": bool(result.is_error),
                "progress": progress,
            }
    print(json.dumps(received))


run_check(main)
