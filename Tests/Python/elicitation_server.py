"""A stdio MCP server (official Python SDK) whose tool asks the client something mid-call.

Tool `greet_asking`: elicits the user's name, then answers "Hello, <name>!" (or "declined").
Tool `greet_asking_later`: the same after 4 s, reporting "refused: …" when the question was refused.
"""
import anyio
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


@server.tool()
async def greet_asking_later(ctx: Context) -> str:
    """Asks after 4 s; when the question is refused, stays busy 4 s more, so that a second call made
    meanwhile is still in flight when this one's question is asked, and the other way round."""
    await anyio.sleep(4)
    try:
        answer = await ctx.elicit("What is your name?", Name)
    except Exception as error:  # noqa: BLE001 - the refusal is what this tool reports
        await anyio.sleep(4)
        return f"refused: {error}"
    if answer.action == "accept" and answer.data is not None:
        return f"Hello, {answer.data.name}!"
    return answer.action


if __name__ == "__main__":
    server.run()
