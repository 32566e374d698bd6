#!/usr/bin/env python3
"""Body-codec benchmark: per-pair patch size (`mallorn diff --level 19 --neural`) against the best
peer at its best settings (zstd --ultra -22 --long=31 --patch-from, xdelta3 -9 -S djw -B <size>,
bsdiff), the retrained-weights geometric mean, and the context coder's decode speed.

Peer sizes are cached in build/peer-sizes.json (keyed by both files' SHA-256): they are slow
(bsdiff needs minutes on the 27 MB pair) and do not change with our code.
"""
import argparse, hashlib, json, math, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "models"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mallorn-models"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pairs(dirs):
    for d in dirs:
        if not (d / "pairs").is_dir():
            continue
        for p in sorted((d / "pairs").iterdir()):
            olds, news = list(p.glob("old.*")), list(p.glob("new.*"))
            if olds and news:
                yield p.name, olds[0], news[0]


def size_of(cmd, out):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out.stat().st_size


def peer_sizes(old, new, tmp, cache, bsdiff_max):
    key = sha(old) + ":" + sha(new)
    if key in cache:
        return cache[key]
    n = new.stat().st_size
    r = {
        "zstd": size_of(["zstd", "-q", "-f", "--ultra", "-22", "--long=31", f"--patch-from={old}", str(new),
                         "-o", str(tmp / "z")], tmp / "z"),
        "xdelta3": size_of(["xdelta3", "-f", "-e", "-9", "-S", "djw", "-B", str(max(n, old.stat().st_size, 1 << 19)),  # xdelta3 refuses less
                            "-s", str(old), str(new), str(tmp / "x")], tmp / "x"),
        "bsdiff": size_of(["bsdiff", str(old), str(new), str(tmp / "b")], tmp / "b") if n <= bsdiff_max else None,
    }
    cache[key] = r
    return r


def geomean(xs):
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mallorn", type=Path, default=ROOT / "build" / "bin" / "mallorn")
    ap.add_argument("--codec-bench", type=Path, default=ROOT / "build" / "bin" / "mallorn_codec_bench",
                    help="decode-speed probe (tests/bench/codec_bench.cpp)")
    ap.add_argument("--quick", action="store_true", help="only ../shared/models (no npm pairs)")
    ap.add_argument("--only", default="", help="substring filter on pair names")
    ap.add_argument("--skip", default="", help="skip pairs whose name contains this")
    ap.add_argument("--bsdiff-max-mb", type=float, default=30)
    ap.add_argument("--json", type=Path, help="write the rows here")
    a = ap.parse_args()
    cache_file = ROOT / "build" / "peer-sizes.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    rows = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name, old, new in pairs([SHARED] + ([] if a.quick else [CACHE])):
            if (a.only and a.only not in name) or (a.skip and a.skip in name):
                continue
            peers = peer_sizes(old, new, tmp, cache, a.bsdiff_max_mb * 1e6)
            cache_file.write_text(json.dumps(cache, indent=1))
            best = min(v for v in peers.values() if v)
            patch = tmp / "p"
            t0 = time.perf_counter()
            subprocess.run([a.mallorn, "diff", old, new, "-o", patch, "--neural", "--level", "19"], check=True,
                           stdout=subprocess.DEVNULL)
            diff_s = time.perf_counter() - t0
            info = json.loads(subprocess.run([a.mallorn, "info", patch, "--json"], capture_output=True, text=True,
                                             check=True).stdout)
            t0 = time.perf_counter()
            subprocess.run([a.mallorn, "patch", old, patch, "-o", tmp / "out"], check=True, stdout=subprocess.DEVNULL)
            apply_s = time.perf_counter() - t0
            ok = sha(tmp / "out") == sha(new)
            ours = patch.stat().st_size
            n = new.stat().st_size
            r = {"pair": name, "new": n, "ours": ours, **peers, "best_peer": best, "ratio": ours / best,
                 "weights_changed": best > 0.5 * n,
                 "cast": any(t["encoding"] == "cast_delta" for t in info["tensors"]),
                 "diff_s": diff_s, "apply_s": apply_s, "ok": ok}
            rows.append(r)
            print(f"{name:42s} new {n:>10,} ours {ours:>10,} best {best:>10,} ({min(peers, key=lambda k: peers[k] or 1e18):7s}) "
                  f"ratio {r['ratio']:.3f}{' *' if r['weights_changed'] and not r['cast'] else '  '} "
                  f"apply {n / 1e6 / apply_s:6.1f} MB/s {'ok' if ok else 'ROUNDTRIP FAILED'}", flush=True)
    retrained = [r for r in rows if r["weights_changed"] and not r["cast"]]
    print(f"\nretrained (weights changed, same dtype; * above): {len(retrained)} pairs, "
          f"geomean ours/best peer {geomean(r['ratio'] for r in retrained):.3f}")
    big = [r for r in rows if r["best_peer"] > 4096]
    worst = max(big, key=lambda r: r["ratio"]) if big else None
    if worst:
        print(f"pairs above 1.00x where the best peer needs > 4 KB: "
              f"{[(r['pair'], round(r['ratio'], 3)) for r in big if r['ratio'] > 1.0]}")
    print(f"geomean over all {len(rows)} pairs: {geomean(r['ratio'] for r in rows):.3f}")
    if a.codec_bench.exists():
        files = [str(p) for name, o, n in pairs([SHARED, CACHE]) for p in (o, n)
                 if "pose-landmark-full_0.4a" in name or "mnist-lstm" in name]
        out = subprocess.run([a.codec_bench] + files, capture_output=True, text=True)
        print(out.stdout + out.stderr)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    if not all(r["ok"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
