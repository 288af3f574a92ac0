"""Walks the whole merged catalogue of a Warden gateway with the official Python MCP SDK.

Usage: mcp_catalogue_check.py URL MODE SERVER...
For each SERVER (a bench server behind the gateway) calls `<server>__echo`, reads a resource from
its template, gets its prompt and completes the prompt's argument. MCP_BEARER_TOKEN: as in
mcp_client_check.py. Prints one JSON object:
{"protocol", "tools", "resources", "templates", "servers": {id: {"echo", "read", "prompt", "complete"}}}.
"""
import json
import sys

from mcp import Client
from mcp.types import PromptReference
from run_check import client_target, run_check


async def main() -> None:
    url, mode, servers = sys.argv[1], sys.argv[2], sys.argv[3:]
    async with Client(client_target(url), mode=mode) as client:
        tools = await client.list_tools()
        resources = await client.list_resources()
        templates = await client.list_resource_templates()
        out = {
            "protocol": client.session.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "resources": sorted(str(r.uri) for r in resources.resources),
            "templates": sorted(t.uri_template for t in templates.resource_templates),
            "servers": {},
        }
        for server in servers:
            echo = await client.call_tool(f"{server}__echo", {"text": f"hello {server}"})
            read = await client.read_resource(f"{server}+bench://items/42")
            prompt = await client.get_prompt(f"{server}__greet", {"name": "Ada"})
            complete = await client.complete(PromptReference(type="ref/prompt", name=f"{server}__greet"), {"name": "name", "value": "A"})
            out["servers"][server] = {
                "echo": echo.content[0].text,
                "read": read.contents[0].text,
                "prompt": prompt.messages[0].content.text,
                "complete": complete.completion.values,
            }
        print(json.dumps(out, sort_keys=True))


run_check(main)
