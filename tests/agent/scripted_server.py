#!/usr/bin/env python3
"""An honest HTTP server with dishonest content, for agent tests: it answers POST /check-update
with the JSON in SCRIPT_DIR/check-update.json, serves GET /files/<name> from SCRIPT_DIR/files (the
whole file, or only its first `truncate_to` bytes when SCRIPT_DIR/truncate.json says so), 404 for
anything else, and appends every POST /report body to SCRIPT_DIR/reports.jsonl.

usage: scripted_server.py SCRIPT_DIR PORT_FILE
"""
import http.server, json, sys
from pathlib import Path

root = Path(sys.argv[1])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/check-update":
            self.send(200, (root / "check-update.json").read_bytes())
        elif self.path == "/report":
            with open(root / "reports.jsonl", "ab") as f:
                f.write(body + b"\n")
            self.send(200, b'{"ok":true}')
        else:
            self.send(404, b'{"error":"not_found"}')

    def do_GET(self):
        f = root / "files" / self.path.removeprefix("/files/")
        if not self.path.startswith("/files/") or not f.is_file():
            return self.send(404, b'{"error":"not_found"}')
        data = f.read_bytes()
        cut = root / "truncate.json"
        if cut.exists():
            data = data[:json.loads(cut.read_text())["truncate_to"]]
        self.send(200, data, "application/octet-stream")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
Path(sys.argv[2]).write_text(str(server.server_port))
server.serve_forever()
