#!/usr/bin/env python3
"""A scripted HTTP server for agent tests: honest HTTP with dishonest content, or dishonest HTTP.

It answers POST /check-update with the bytes of SCRIPT_DIR/check-update.json, serves
GET /files/<name> from SCRIPT_DIR/files (the whole file, or only its first `truncate_to` bytes
when SCRIPT_DIR/truncate.json says so), 404 for anything else, and appends every POST /report
body to SCRIPT_DIR/reports.jsonl and every request line to SCRIPT_DIR/requests.jsonl.

SCRIPT_DIR/behaviour.json, when present, maps a route ("check-update" or "files/<name>") to how
that answer misbehaves (any combination):
  "status": 302                      the status line
  "headers": {"Location": "..."}     extra headers
  "content_length": null | N         omit Content-Length (body ends at close) or announce N
  "endless": true                    after the body, junk until the client leaves (or 64 MiB)
  "huge_header": N                   an X-Padding header of N bytes
  "drip": 0.5                        the body one byte every 0.5 s
  "watch": "/path/download.part"     while sending, record the largest size this file reached
                                     in SCRIPT_DIR/watch-max

usage: scripted_server.py SCRIPT_DIR PORT_FILE
"""
import http.server, json, os, sys, time
from pathlib import Path

root = Path(sys.argv[1])
ENDLESS_LIMIT = 64 << 20


def behaviour(route):
    f = root / "behaviour.json"
    return json.loads(f.read_text()).get(route, {}) if f.exists() else {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def record(self):
        with open(root / "requests.jsonl", "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers)}) + "\n")

    def watch(self, path):
        if not path:
            return
        try:
            size = os.path.getsize(path)
        except OSError:
            return
        seen = root / "watch-max"
        if not seen.exists() or int(seen.read_text() or 0) < size:
            seen.write_text(str(size))

    def send(self, status, body, ctype="application/json", route=None):
        b = behaviour(route) if route else {}
        self.send_response(b.get("status", status))
        self.send_header("Content-Type", ctype)
        length = b.get("content_length", len(body)) if "content_length" in b else len(body)
        if b.get("endless"):
            length = None
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in b.get("headers", {}).items():
            self.send_header(k, v)
        if b.get("huge_header"):
            self.send_header("X-Padding", "x" * b["huge_header"])
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            if b.get("drip"):
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(b["drip"])
            else:
                self.wfile.write(body)
            self.watch(b.get("watch"))
            if b.get("endless"):
                junk = b"\xa5" * (256 << 10)
                sent = 0
                while sent < ENDLESS_LIMIT:
                    self.wfile.write(junk)
                    sent += len(junk)
                    self.watch(b.get("watch"))
                with open(root / "endless-sent", "a") as f:
                    f.write(f"{sent}\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        # Keep watching a little: the client may still be writing what it received.
        for _ in range(20):
            self.watch(b.get("watch"))
            time.sleep(0.01)
        self.close_connection = True

    def do_POST(self):
        self.record()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/check-update":
            self.send(200, (root / "check-update.json").read_bytes(), route="check-update")
        elif self.path == "/report":
            with open(root / "reports.jsonl", "ab") as f:
                f.write(body + b"\n")
            self.send(200, b'{"ok":true}')
        else:
            self.send(404, b'{"error":"not_found"}')

    def do_GET(self):
        self.record()
        name = self.path.removeprefix("/files/")
        f = root / "files" / name
        if not self.path.startswith("/files/") or not f.is_file():
            return self.send(404, b'{"error":"not_found"}')
        data = f.read_bytes()
        cut = root / "truncate.json"
        if cut.exists():
            data = data[:json.loads(cut.read_text())["truncate_to"]]
        self.send(200, data, "application/octet-stream", route="files/" + name)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
Path(sys.argv[2]).write_text(str(server.server_port))
server.serve_forever()
