"""A Streamable HTTP MCP server whose answers break off: `python broken_http_server.py`.

Listens on a free loopback port and prints its URL. Tool `echo(text)` answers normally; tools
`cut_json` and `cut_events` start an answer (a JSON body, an event stream) and close the connection
halfway through it, as a server that crashes or a proxy that drops the connection would;
`stall_json` starts a JSON body and sends nothing more for a minute.
"""
import json
import socket
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chunk(data):
    """One chunk of a chunked body (the last chunk, which would end the body, never follows)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def cut(self, headers, part):
        self.send_response(200)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(part)
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def do_POST(self):
        message = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if "id" not in message:
            return self.answer(202)
        method, params = message["method"], message.get("params") or {}
        if method == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "broken", "version": "1"}}
            headers = [("Content-Type", "application/json"), ("Mcp-Session-Id", uuid.uuid4().hex)]
        elif method == "tools/call" and params.get("name") == "cut_json":
            return self.cut([("Content-Type", "application/json"), ("Content-Length", "1000")], b'{"jsonrpc":"2.0","id":')
        elif method == "tools/call" and params.get("name") == "cut_events":
            return self.cut(
                [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")],
                chunk(b'event: message\ndata: {"jsonrpc":"2.0",'))
        elif method == "tools/call" and params.get("name") == "stall_json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"jsonrpc":"2.0","id":')
            self.wfile.flush()
            time.sleep(60)
            self.close_connection = True
            return None
        elif method == "tools/call":
            text = params.get("arguments", {}).get("text", "")
            result = {"content": [{"type": "text", "text": text}], "isError": False}
            headers = [("Content-Type", "application/json")]
        else:
            result, headers = {}, [("Content-Type", "application/json")]
        self.answer(200, json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode(), headers)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}/mcp", flush=True)
    server.serve_forever()
