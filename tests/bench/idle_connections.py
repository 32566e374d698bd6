#!/usr/bin/env python3
"""Hold N idle HTTP/1.1 keep-alive connections against a server (used by scripts/bench-server.sh).

Opens N sockets, sends one `GET <path> HTTP/1.1` on each and reads the whole response, then keeps
every socket open and idle. Once all are open it writes a JSON summary to --ready-file and waits
until --release-file exists (or --hold seconds pass). Before exiting it probes every connection
again with a second request, to show the server kept them, and prints a JSON summary on stdout.
Standard library only.
"""
import argparse
import json
import os
import resource
import selectors
import socket
import sys
import time


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:  # only root can raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def response_complete(buf):
    """True once buf holds a whole response (headers plus Content-Length bytes)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return len(buf) >= end + 4 + length


def status_of(buf):
    try:
        return int(buf.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def exchange(socks, request, timeout):
    """Send request on every socket at once and read the responses; returns {sock: status or 0}."""
    sel = selectors.DefaultSelector()
    pending = {}
    result = {}
    for s in socks:
        try:
            s.sendall(request)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        except OSError:
            result[s] = 0
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                pending[s] += chunk
                if not response_complete(pending[s]):
                    continue
                result[s] = status_of(pending[s])
            else:  # closed by the server
                result[s] = 0
            del pending[s]
            sel.unregister(s)
    for s in pending:
        result[s] = 0
    sel.close()
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", "--connections", type=int, default=10000)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--batch", type=int, default=500, help="connections opened and asked at once")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds for each batch's responses")
    ap.add_argument("--ready-file", help="write the open summary (JSON) here once all are open")
    ap.add_argument("--release-file", help="hold until this file exists")
    ap.add_argument("--hold", type=float, default=120.0, help="hold at most this many seconds")
    ap.add_argument("--sources", type=int, default=1,
                    help="spread the connections over source addresses 127.0.0.1 .. 127.0.0.N (the server caps "
                         "connections per client address; many idle clients are many addresses)")
    args = ap.parse_args()

    limit = raise_nofile(args.connections + 256)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               f"User-Agent: idle_connections.py\r\n\r\n").encode()
    t0 = time.monotonic()
    open_socks = []
    connect_errors = 0
    bad_status = 0
    for first in range(0, args.connections, args.batch):
        batch = []
        for i in range(min(args.batch, args.connections - first)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if args.sources > 1:
                s.bind((f"127.0.{(first + i) % args.sources // 250}.{(first + i) % args.sources % 250 + 1}", 0))
            s.settimeout(args.timeout)
            try:
                s.connect((args.host, args.port))
            except OSError:
                connect_errors += 1
                s.close()
                continue
            s.setblocking(False)
            batch.append(s)
        for s, status in exchange(batch, request, args.timeout).items():
            if status == 200:
                open_socks.append(s)
            else:
                bad_status += 1
                s.close()
    summary = {"requested": args.connections, "open": len(open_socks), "connect_errors": connect_errors,
               "failed_requests": bad_status, "open_seconds": round(time.monotonic() - t0, 2),
               "nofile_limit": limit}
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(summary, f)
        os.replace(tmp, args.ready_file)

    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        if args.release_file and os.path.exists(args.release_file):
            break
        time.sleep(0.1)
    summary["held_seconds"] = round(time.monotonic() - t0 - summary["open_seconds"], 2)

    # Every connection should still be open and usable after sitting idle.
    alive = 0
    for i in range(0, len(open_socks), args.batch):
        alive += sum(1 for st in exchange(open_socks[i:i + args.batch], request, args.timeout).values() if st == 200)
    summary["still_usable"] = alive
    for s in open_socks:
        s.close()
    print(json.dumps(summary))
    return 0 if summary["open"] == args.connections and alive == len(open_socks) else 1


if __name__ == "__main__":
    sys.exit(main())
