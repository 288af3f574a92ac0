"""An HTTP server that answers every request with a redirect: `python redirecting_server.py PORT TARGET`.

A gateway must not follow it: a downstream server's redirect could send the gateway's request (and
the credentials it carries for that server) somewhere else.
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

target = sys.argv[2]


class Redirect(BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(307)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = answer

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Redirect).serve_forever()
