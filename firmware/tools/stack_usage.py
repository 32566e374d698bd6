#!/usr/bin/env python3
"""Worst-case stack of each mallorn_lite entry point, from gcc's -fcallgraph-info=su output.

usage: stack_usage.py BUILD_DIR [--json]

Sums the static frames (-fstack-usage) along the deepest call chain below every public
function. Calls through the flash HAL's function pointers are the port's: they are listed as
"+ HAL" and not counted. Fails on recursion or on a dynamic-size frame.
"""
import json
import pathlib
import re
import sys

ENTRY_POINTS = ["mallorn_lite_init", "mallorn_lite_require_signature", "mallorn_lite_set_min_version",
                "mallorn_lite_feed", "mallorn_lite_finish", "mallorn_lite_abort", "mallorn_lite_slot_read",
                "mallorn_lite_boot_select", "mallorn_lite_confirm", "mallorn_lite_slot_install"]

node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"\\]+)\\n[^"]*?\\n(\d+) bytes \(([a-z,]+)\)')
edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def bare(title):
    return title.rsplit(":", 1)[-1]


def main():
    build = pathlib.Path(sys.argv[1])
    frames, kinds, edges = {}, {}, {}
    for ci in build.rglob("*.ci"):
        text = ci.read_text()
        for title, name, size, kind in node_re.findall(text):
            frames[title] = int(size)
            kinds[title] = kind
        for src, dst in edge_re.findall(text):
            edges.setdefault(src, []).append(dst)
    by_name = {}
    for title in frames:
        by_name.setdefault(bare(title), []).append(title)

    def resolve(t):
        if t in frames:
            return t
        cands = by_name.get(bare(t), [])
        return cands[0] if len(cands) == 1 else None

    memo = {}

    def depth(t, seen=()):
        if t in seen:
            sys.exit(f"stack_usage: recursion through {bare(t)}")
        if t in memo:
            return memo[t]
        if "dynamic" in kinds.get(t, ""):
            sys.exit(f"stack_usage: {bare(t)} has a dynamic frame")
        best, chain = 0, []
        for d in edges.get(t, []):
            r = resolve(d)
            if r is None:
                continue  # libc (memcpy, memset, memcmp: leaf, a few bytes) or an indirect HAL call
            s, c = depth(r, seen + (t,))
            if s > best:
                best, chain = s, c
        memo[t] = (frames[t] + best, [bare(t)] + chain)
        return memo[t]

    out = {}
    for ep in ENTRY_POINTS:
        t = resolve(ep)
        if t is None:
            continue
        out[ep] = depth(t)
    if "--json" in sys.argv:
        print(json.dumps({k: {"bytes": v[0], "chain": v[1]} for k, v in out.items()}))
    else:
        for k, (s, chain) in out.items():
            print(f"{k:34s} {s:5d} bytes + HAL   ({' > '.join(chain)})")


if __name__ == "__main__":
    main()
