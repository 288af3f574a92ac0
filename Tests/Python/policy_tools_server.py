"""A stdio MCP server (official Python SDK) whose tools carry the names of the policy examples:
web_search, read_file, write_file, pay_invoice, github_create_issue, db_query, crm_update_record. Each answers
"ran <tool>" with its arguments, so a test sees which calls reached it."""
import json

from mcp.server.mcpserver import MCPServer

server = MCPServer("policy-tools")


def ran(tool: str, **arguments) -> str:
    return f"ran {tool} " + json.dumps(arguments, sort_keys=True)


@server.tool()
def web_search(query: str = "") -> str:
    return ran("web_search", query=query)


@server.tool()
def read_file(path: str = "") -> str:
    return ran("read_file", path=path)


@server.tool()
def write_file(path: str = "", text: str = "") -> str:
    return ran("write_file", path=path, text=text)


@server.tool()
def pay_invoice(invoice: str = "") -> str:
    return ran("pay_invoice", invoice=invoice)


@server.tool()
def github_create_issue(repository: str = "", title: str = "") -> str:
    return ran("github_create_issue", repository=repository, title=title)


@server.tool()
def db_query(sql: str = "") -> str:
    return ran("db_query", sql=sql)


@server.tool()
def crm_update_record(customer_id: str = "", note: str = "") -> str:
    return ran("crm_update_record", customer_id=customer_id, note=note)


if __name__ == "__main__":
    server.run()
