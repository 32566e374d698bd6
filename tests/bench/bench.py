#!/usr/bin/env python3
"""Patch-size and speed benchmark: mallorn vs zstd --patch-from, xdelta3 and bsdiff, same run.

Prints a table and writes docs/benchmarks.md. Not part of ctest (minutes, not seconds).
"""
import argparse, hashlib, json, math, os, platform, random, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import doc_sections  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MALLORN = ROOT / "build" / "bin" / "mallorn"  # --mallorn overrides
SHARED = ROOT.parent / "shared" / "models"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mallorn-models"


def run_timed(cmd):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS KiB)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {p.stderr[-500:]}")
    return secs, int(p.stderr.strip().splitlines()[-1])


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
                yield p.name, olds[0], news[0], d == SHARED


def bench_pair(name, old, new, tmp, skip_bsdiff_over):
    size = new.stat().st_size
    r = {"pair": name, "format": new.suffix[1:], "old": old.stat().st_size, "new": size}
    out = tmp / "p"
    r["diff_s"], _ = run_timed([MALLORN, "diff", old, new, "-o", out])
    r["mallorn"] = out.stat().st_size
    r["diff19_s"], _ = run_timed([MALLORN, "diff", old, new, "-o", tmp / "p19", "--neural", "--level", "19"])
    r["mallorn19"] = (tmp / "p19").stat().st_size
    best = out if r["mallorn"] <= r["mallorn19"] else tmp / "p19"
    info = json.loads(subprocess.run([MALLORN, "info", best, "--json"], capture_output=True, text=True, check=True).stdout)
    r["cast"] = any(t["encoding"] == "cast_delta" for t in info["tensors"])
    r["apply_s"], r["apply_rss"] = run_timed([MALLORN, "patch", old, best, "-o", tmp / "out"])
    r["roundtrip"] = sha(tmp / "out") == sha(new)
    run_timed(["zstd", "-q", "-f", "-19", "--long=27", f"--patch-from={old}", new, "-o", tmp / "z"])
    r["zstd"] = (tmp / "z").stat().st_size
    run_timed(["xdelta3", "-f", "-e", "-9", "-s", old, new, tmp / "x"])
    r["xdelta3"] = (tmp / "x").stat().st_size
    if size <= skip_bsdiff_over:
        run_timed(["bsdiff", old, new, tmp / "b"])
        r["bsdiff"] = (tmp / "b").stat().st_size
    else:
        r["bsdiff"] = None
    peers = [v for v in (r["zstd"], r["xdelta3"], r["bsdiff"]) if v]
    r["best_peer"] = min(peers)
    r["ours"] = min(r["mallorn"], r["mallorn19"])
    r["ratio"] = r["ours"] / r["best_peer"]
    r["weights_changed"] = r["best_peer"] > 0.5 * size
    return r


# Little-endian f32 sign+exponent byte of weights in roughly +-[2^-8, 2^-4): what trained weights
# look like, rather than uniformly random bytes (whose exponents span the whole f32 range).
F32_TOP_BYTE = bytes((0x3c + (b & 1)) | (b & 0x80) for b in range(256))


def big_test(mib, tmp, seed=1234):
    """Synthetic model: one f32 tensor of `mib` MiB of random weight-like floats (fixed seed) in a
    safetensors wrapper, and a copy with ~1% of its 4-byte words perturbed in the low mantissa."""
    n = mib << 20
    header = ('{"w":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}' % (n // 4, n)).encode()
    header += b" " * (-len(header) % 8)
    old, new = tmp / "big_old.safetensors", tmp / "big_new.safetensors"
    rng = random.Random(seed)
    words = (1 << 20) // 4
    with open(old, "wb") as fo, open(new, "wb") as fn:
        prefix = len(header).to_bytes(8, "little") + header
        fo.write(prefix), fn.write(prefix)
        for _ in range(mib):  # 1 MiB at a time: bounded memory for any N
            block = bytearray(rng.randbytes(1 << 20))
            block[3::4] = block[3::4].translate(F32_TOP_BYTE)
            fo.write(block)
            for w in rng.sample(range(words), words // 100):
                block[4 * w] ^= 1 + rng.randrange(255)
            fn.write(block)
    diff_s, diff_rss = run_timed([MALLORN, "diff", old, new, "-o", tmp / "big.mlrn"])
    apply_s, apply_rss = run_timed([MALLORN, "patch", old, tmp / "big.mlrn", "-o", tmp / "big_out"])
    ok = sha(tmp / "big_out") == sha(new)
    r = {"mib": mib, "patch": (tmp / "big.mlrn").stat().st_size, "diff_s": diff_s, "apply_s": apply_s,
         "diff_rss": diff_rss, "apply_rss": apply_rss, "roundtrip": ok}
    for f in (old, new, tmp / "big_out", tmp / "big.mlrn"):
        f.unlink()
    return r


def geomean(xs):
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def fmt(v):
    return "-" if v is None else f"{v:,}"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(rows, big, extra_sources):
    lines = []
    add = lines.append
    add("# Benchmarks\n")
    add(f"Generated by `scripts/bench.sh` on {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: nproc {len(os.sched_getaffinity(0))}, "
        f"{cpu_model()}, {platform.platform()}. "
        "All tools ran in the same run on the same files. `mallorn` = `mallorn diff` at the default level 3; "
        "`mallorn -19n` = `--neural --level 19`; *ours* is the smaller of the two. Peers: `zstd -19 --long=27 "
        "--patch-from`, `xdelta3 -e -9 -s`, `bsdiff`. Every mallorn patch was applied and checked bit for bit.\n")
    if extra_sources:
        add("Pairs from `../shared/models/pairs` (in CI) and from `fetch-npm.sh` (larger MediaPipe/Silero/... pairs).\n")
    add("| pair | fmt | old bytes | new bytes | mallorn | mallorn -19n | zstd | xdelta3 | bsdiff | ours / best peer | diff MB/s | diff -19n MB/s | apply MB/s | apply RSS MiB | ok |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        add(f"| {r['pair']}{' *' if r['weights_changed'] else ''} | {r['format']} | {r['old']:,} | {r['new']:,} | {r['mallorn']:,} | "
            f"{r['mallorn19']:,} | {r['zstd']:,} | {r['xdelta3']:,} | {fmt(r['bsdiff'])} | {r['ratio']:.3f} | "
            f"{r['new'] / 1e6 / r['diff_s']:.1f} | {r['new'] / 1e6 / r['diff19_s']:.1f} | {r['new'] / 1e6 / r['apply_s']:.1f} | "
            f"{r['apply_rss'] / 1024:.1f} | {'yes' if r['roundtrip'] else 'NO'} |")
    wc = [r for r in rows if r["weights_changed"]]
    worse = [r for r in rows if r["ratio"] > 1.0]
    big_rows = [r for r in rows if r["new"] >= 2_000_000]
    diff_tp = sum(r["new"] for r in big_rows) / 1e6 / sum(r["diff_s"] for r in big_rows) if big_rows else float("nan")
    apply_tp = sum(r["new"] for r in big_rows) / 1e6 / sum(r["apply_s"] for r in big_rows) if big_rows else float("nan")
    add("\n`*` = weights changed (retrained, re-quantized or dtype-changed): the best peer needs more than half the new file. "
        "A dtype-change pair is one where our patch predicted a tensor by casting the old one (`cast_delta`).\n")
    add("## Summary against the targets\n")
    add("| target | result | met |")
    add("|---|---|---|")
    g_wc = geomean(r["ratio"] for r in wc)
    add(f"| geomean(ours / best peer) <= 0.80 over weights-changed pairs ({len(wc)}) | {g_wc:.3f} | {'yes' if g_wc <= 0.8 else 'no'} |")
    wc_nocast = [r for r in wc if not r["cast"]]
    add(f"| same, without the dtype-change pairs ({len(wc_nocast)}; retrained weights only) | "
        f"{geomean(r['ratio'] for r in wc_nocast):.3f} | {'yes' if geomean(r['ratio'] for r in wc_nocast) <= 0.8 else 'no'} |")
    add(f"| geomean over all pairs ({len(rows)}) | {geomean(r['ratio'] for r in rows):.3f} | (info) |")
    add(f"| <= 1.00 on every pair | worse than the best peer on {len(worse)} of {len(rows)} pairs"
        + (": " + ", ".join(f"{r['pair']} ({r['ratio']:.2f}, {r['ours'] - r['best_peer']:+,} bytes)" for r in worse) if worse else "")
        + f" | {'yes' if not worse else 'no'} |")
    add(f"| diff >= 20 MB/s at the default level (pairs >= 2 MB, whole process incl. start-up) | {diff_tp:.1f} MB/s | {'yes' if diff_tp >= 20 else 'no'} |")
    add(f"| apply >= 200 MB/s (pairs >= 2 MB, whole process incl. hashing the old model) | {apply_tp:.1f} MB/s | {'yes' if apply_tp >= 200 else 'no'} |")
    max_rss = max((r["apply_rss"] for r in rows), default=0)
    add(f"| apply peak RSS on the real pairs (info) | at most {max_rss / 1024:.1f} MiB | (info) |")
    if big:
        add(f"| apply memory bounded: {big['mib']} MiB synthetic model applied in < 64 MiB RSS | "
            f"{big['apply_rss'] / 1024:.1f} MiB peak RSS, {big['mib'] / big['apply_s']:.0f} MiB/s apply, "
            f"{big['mib'] / big['diff_s']:.0f} MiB/s diff ({big['diff_rss'] / 1024:.0f} MiB RSS), patch {big['patch']:,} bytes "
            f"for ~1% of words changed, round trip {'ok' if big['roundtrip'] else 'FAILED'} | "
            f"{'yes' if big['apply_rss'] < 64 * 1024 and big['roundtrip'] else 'no'} |")
    else:
        add("| apply memory bounded (synthetic big model) | not run (`--quick` or `--big 0`) | - |")
    add("\nWhere a target is not met, see the notes below.\n")
    return "\n".join(lines) + "\n"


def main():
    global MALLORN
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fetch", action="store_true", help="run ../shared/models/fetch-npm.sh first")
    ap.add_argument("--quick", action="store_true", help="only the CI-sized pairs, no big synthetic test")
    ap.add_argument("--big", type=int, default=1024, help="MiB of the synthetic memory test (0 = skip)")
    ap.add_argument("--bsdiff-max-mb", type=float, default=30, help="skip bsdiff above this new-file size")
    ap.add_argument("--notes", type=Path, default=ROOT / "tests" / "bench" / "notes.md",
                    help="text appended to docs/benchmarks.md")
    ap.add_argument("--out", type=Path, default=None,
                    help="report file (default docs/benchmarks.md; with --quick build/benchmarks-quick.md, "
                         "so a partial run never replaces the published full one)")
    ap.add_argument("--mallorn", type=Path, default=MALLORN, help="the mallorn binary (default build/bin/mallorn)")
    a = ap.parse_args()
    MALLORN = a.mallorn.resolve()
    if a.out is None:
        a.out = ROOT / "build" / "benchmarks-quick.md" if a.quick else ROOT / "docs" / "benchmarks.md"
        a.out.parent.mkdir(parents=True, exist_ok=True)
    if not MALLORN.exists():
        sys.exit(f"{MALLORN} missing: scripts/bench.sh builds it")
    if a.fetch:
        subprocess.run([SHARED / "fetch-npm.sh", CACHE], check=False)
    sources = [SHARED] + ([] if a.quick else [CACHE])
    rows = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name, old, new, _ in pairs(sources):
            r = bench_pair(name, old, new, tmp, a.bsdiff_max_mb * 1e6)
            rows.append(r)
            print(f"{name:45s} new {r['new']:>11,}  ours {r['ours']:>10,}  best peer {r['best_peer']:>10,}  "
                  f"ratio {r['ratio']:.3f}  {'ok' if r['roundtrip'] else 'ROUNDTRIP FAILED'}", flush=True)
        big = None if a.quick or a.big == 0 else big_test(a.big, tmp)
    text = report(rows, big, not a.quick and CACHE.exists())
    if a.notes.exists():
        text += "\n" + a.notes.read_text()
    # Keep the sections the other benchmarks own (<!-- NAME-bench:begin/end -->) when rewriting.
    if a.out.exists():
        text = doc_sections.keep_other_sections(a.out.read_text(), text)
    a.out.write_text(text)
    print(text)
    if not all(r["roundtrip"] for r in rows) or (big and not big["roundtrip"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
