"""A stdio MCP server (official Python SDK) whose tool asks the client something mid-call.

Tool `greet_asking`: elicits the user's name, then answers "Hello, <name>!" (or "declined").
"""
from pydantic import BaseModel

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("elicitation-test")


class Name(BaseModel):
    name: str


@server.tool()
async def greet_asking(ctx: Context) -> str:
    answer = await ctx.elicit("What is your name?", Name)
    if answer.action == "accept" and answer.data is not None:
        return f"Hello, {answer.data.name}!"
    return answer.action


if __name__ == "__main__":
    server.run()
