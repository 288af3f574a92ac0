"""An HTTP endpoint standing in for Slack's incoming webhook and an org's webhook receiver: logs each
POST as a JSON line {"path", "status", "headers", "body"} to LOG_FILE. /slack answers 200; /hook
answers 500 to its first two requests, then 200 (so retries show); /dead always answers 500. It
listens on a free port, written to PORT_FILE.

Usage: notice_receiver.py PORT_FILE LOG_FILE
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file = sys.argv[1], sys.argv[2]
lock = threading.Lock()
hook_requests = [0]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        with lock:
            if self.path == "/hook":
                hook_requests[0] += 1
                status = 500 if hook_requests[0] <= 2 else 200
            else:
                status = 500 if self.path == "/dead" else 200
            headers = {name: value for name, value in self.headers.items() if name.lower().startswith("warden-")}
            with open(log_file, "a") as log:
                log.write(json.dumps({"path": self.path, "status": status, "headers": headers, "body": body}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os

os.rename(port_file + ".tmp", port_file)
server.serve_forever()
