#!/usr/bin/env python3
"""mallorn-agent benchmark: memory and speed of an update on the device, and a fleet of N agents
against one mallornd on loopback. Peers run in the same run on the same pairs: applying the same
update with `xdelta3 -d`, `zstd -d --patch-from` and `bspatch`, and a fleet that downloads the
whole new model with curl. Prints a table and writes the agent-bench section of docs/benchmarks.md.

usage: scripts/bench-agent.sh [--fleet N] [--pairs NAME ...] [--no-fetch]
"""
import argparse, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import doc_sections  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "bin"
SHARED = ROOT.parent / "shared" / "models"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mallorn-models"
# Small to large, so the table shows whether memory grows with the model.
DEFAULT_PAIRS = ["tfm-micro-speech_realign", "coral-mnv1-025-quant_2020-to-2021a", "coral-mnv2-edgetpu_2020-to-2021a",
                 "mp-pose-landmark-full_0.4a-to-0.4b", "mp-pose-landmark-heavy_0.3-to-0.4"]
FLEET_PAIR = "coral-mnv2-quant_2020-to-2021a"


def find_pair(name):
    for base in (SHARED / "pairs", CACHE / "pairs"):
        d = base / name
        if d.is_dir():
            files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.endswith((".json", ".txt", ".md")))
            old = [p for p in files if p.stem.startswith("old") or p.name.startswith("old")]
            new = [p for p in files if p.stem.startswith("new") or p.name.startswith("new")]
            if old and new:
                return old[0], new[0]
    return None


def timed(cmd, **kw):
    """Runs cmd under /usr/bin/time: (seconds, max RSS in KiB, completed process)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + [str(c) for c in cmd], capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t0
    try:
        rss = int(p.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        rss = 0
    return dt, rss, p


def best_of(n, cmd, **kw):
    runs = [timed(cmd, **kw) for _ in range(n)]
    for _, _, p in runs:
        if p.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {p.stderr[-500:]}")
    return min(r[0] for r in runs), max(r[1] for r in runs)


class Server:
    def __init__(self, work, store):
        self.work = work
        self.proc = subprocess.Popen(
            [BIN / "mallornd", "--models", store, "--data", work / "data", "--listen", "127.0.0.1:0", "--port-file",
             work / "port", "--rate-limit", "0", "--level", "9", "--max-connections", "4096"],
            stdout=subprocess.DEVNULL, stderr=open(work / "mallornd.log", "w"))
        for _ in range(300):
            if (work / "port").exists() and (work / "port").read_text().strip():
                break
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{(work / 'port').read_text().strip()}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def make_device(work, url, model, name, v1, file_name):
    home = work / "devices" / name
    home.mkdir(parents=True)
    cfg = {"server": url, "device_id": name, "http_timeout": 60,
           "models": [{"name": model, "dir": str(home / "slots"), "file": file_name}]}
    (home / "agent.json").write_text(json.dumps(cfg))
    subprocess.run([BIN / "mallorn-agent", "--config", home / "agent.json", "install", model, v1], check=True,
                   capture_output=True)
    return home


def agent_cmd(home):
    return [BIN / "mallorn-agent", "--config", home / "agent.json", "check-once", "--json"]


def until_ready(home):
    """check-once until the server has built the patch (exit 3 = pending)."""
    for _ in range(3000):
        p = subprocess.run(agent_cmd(home), capture_output=True, text=True)
        if p.returncode != 3:
            return p
        time.sleep(0.2)
    raise RuntimeError("the server never finished the patch")


def bench_pair(name, old, new, work, server):
    model = name
    warm = make_device(work, server.url, model, name + "-warm", old, "model" + new.suffix)
    if until_ready(warm).returncode != 0:
        raise RuntimeError(f"{name}: warm-up update failed")
    journal = json.loads((warm / "slots" / "journal.json").read_text())
    patch = work / (name + ".mlrn")
    subprocess.run(["curl", "-sf", "-o", patch, server.url + journal["patch_url"]], check=True)
    # The agent end to end (check, download over loopback, apply into the inactive slot, verify,
    # swap): best time of 3 fresh devices, and the largest RSS any of them reached.
    runs = []
    for i in range(3):
        home = make_device(work, server.url, model, f"{name}-{i}", old, "model" + new.suffix)
        runs.append(timed(agent_cmd(home)))
        if runs[-1][2].returncode != 0:
            raise RuntimeError(f"{name}: agent failed: {runs[-1][2].stdout} {runs[-1][2].stderr[-400:]}")
    agent_s, agent_rss = min(r[0] for r in runs), max(r[1] for r in runs)
    # The apply alone, with the same core applier as the agent: `mallorn patch`.
    out = work / "out.bin"
    apply_s, apply_rss = best_of(3, [BIN / "mallorn", "patch", old, patch, "-o", out])
    row = {"pair": name, "old": old.stat().st_size, "new": new.stat().st_size, "patch": patch.stat().st_size,
           "agent_s": agent_s, "agent_rss": agent_rss, "apply_s": apply_s, "apply_rss": apply_rss, "peers": {}}
    # Peers: each tool's own patch for the same pair, applied by the tool.
    peers = {
        "xdelta3": (["xdelta3", "-e", "-9", "-f", "-s", old, new, work / "p.xd3"],
                    ["xdelta3", "-d", "-f", "-s", old, work / "p.xd3", out]),
        "zstd": (["zstd", "-q", "-f", "-19", "--long=27", f"--patch-from={old}", new, "-o", work / "p.zst"],
                 ["zstd", "-q", "-f", "-d", "--long=27", f"--patch-from={old}", work / "p.zst", "-o", out]),
    }
    if new.stat().st_size <= 8_000_000:  # bsdiff needs minutes and ~17x the model in RAM beyond that
        peers["bspatch"] = (["bsdiff", old, new, work / "p.bsd"], ["bspatch", old, out, work / "p.bsd"])
    for peer, (make, apply) in peers.items():
        if not shutil.which(make[0]):
            continue
        subprocess.run(make, check=True, capture_output=True)
        row["peers"][peer] = best_of(3, apply)
    return row


def fleet(n, work, server, old, new):
    model = FLEET_PAIR
    warm = make_device(work, server.url, model, "fleet-warm", old, "model" + new.suffix)
    until_ready(warm)
    homes = [make_device(work, server.url, model, f"fleet-{i}", old, "model" + new.suffix) for i in range(n)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(agent_cmd(h), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for h in homes]
    codes = [p.wait() for p in procs]
    agents_s = time.perf_counter() - t0
    ok = sum(1 for c in codes if c == 0)
    # Peer: the same fleet fetching the whole new model with curl (and checking its SHA-256).
    dl = work / "curl"
    dl.mkdir()
    t0 = time.perf_counter()
    procs = [subprocess.Popen(f"curl -sf -o {dl}/{i} {server.url}/model/{model}/2 && sha256sum {dl}/{i} >/dev/null",
                              shell=True) for i in range(n)]
    curl_ok = sum(1 for p in procs if p.wait() == 0)
    curl_s = time.perf_counter() - t0
    patch_size = json.loads((warm / "slots" / "journal.json").read_text())["patch_size"]
    return {"n": n, "agents_s": agents_s, "ok": ok, "curl_s": curl_s, "curl_ok": curl_ok,
            "patch": patch_size, "model": new.stat().st_size}


def mib(kib):
    return f"{kib / 1024:.1f}"


def report(rows, fl):
    host = f"{os.cpu_count()} cores ({platform.machine()}), Linux {platform.release()}"
    lines = [f"Generated by `scripts/bench-agent.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {host}.",
             "mallornd on loopback (`--level 9`), one fresh device per run (best time of 3; RSS: the largest). "
             "*Agent* is one whole `mallorn-agent check-once` (check-update, download over loopback, apply into the "
             "inactive slot, verify the SHA-256, swap, commit); *apply* is the same core applier alone "
             "(`mallorn patch`, which also hashes the old model before and the new one after, and fsyncs the output; "
             "the peers do none of that), and the peers apply their own patch of the same pair.", "",
             "| pair | new model | patch | agent RSS | agent time | apply | apply RSS | xdelta3 -d | zstd -d --patch-from | bspatch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mbps = r["new"] / r["apply_s"] / 1e6
        cells = []
        for peer in ("xdelta3", "zstd", "bspatch"):
            if peer in r["peers"]:
                s, rss = r["peers"][peer]
                cells.append(f"{s * 1000:.0f} ms, {mib(rss)} MiB ({r['apply_s'] / s:.2f}x time)")
            else:
                cells.append("–")
        lines.append(f"| {r['pair']} | {r['new'] / 1e6:.2f} MB | {r['patch'] / 1e3:,.1f} kB | {mib(r['agent_rss'])} MiB | "
                     f"{r['agent_s'] * 1000:.0f} ms | {r['apply_s'] * 1000:.0f} ms ({mbps:.0f} MB/s) | "
                     f"{mib(r['apply_rss'])} MiB | " + " | ".join(cells) + " |")
    largest = max(rows, key=lambda r: r["new"])
    smallest = min(rows, key=lambda r: r["new"])
    lines += ["", f"Target: agent RSS < 32 MiB while applying the largest pair, independent of model size. "
              f"Largest pair here ({largest['pair']}, {largest['new'] / 1e6:.1f} MB): {mib(largest['agent_rss'])} MiB "
              f"({'met' if largest['agent_rss'] < 32 * 1024 else 'NOT met'}); smallest ({smallest['pair']}, "
              f"{smallest['new'] / 1e6:.2f} MB): {mib(smallest['agent_rss'])} MiB. "
              "The peers' times are ratios *ours / theirs* (below 1: we are faster)."]
    if fl:
        lines += ["", f"**Fleet:** {fl['n']} agents updating {FLEET_PAIR} at once against one mallornd on loopback "
                  f"({len(os.sched_getaffinity(0))} cores shared by server and agents): all done in {fl['agents_s']:.2f} s ({fl['ok']}/{fl['n']} "
                  f"updated, {fl['patch'] * fl['n'] / 1e6:.1f} MB transferred). The same fleet downloading the whole new "
                  f"model with curl (no apply, no slot swap): {fl['curl_s']:.2f} s ({fl['curl_ok']}/{fl['n']}, "
                  f"{fl['model'] * fl['n'] / 1e6:.1f} MB) — agents/curl = {fl['agents_s'] / fl['curl_s']:.2f}x time, "
                  f"{fl['patch'] / fl['model']:.3f}x bytes."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleet", type=int, default=50, help="agents in the fleet run (0: skip)")
    ap.add_argument("--pairs", nargs="*", default=DEFAULT_PAIRS, help="pairs to measure (missing ones are skipped)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mallorn-bench-agent-") as tmp:
        work = Path(tmp)
        store = work / "store"
        chosen = []
        for name in a.pairs + [FLEET_PAIR]:
            found = find_pair(name)
            if not found:
                print(f"skipping {name}: not found (run ../shared/models/fetch-npm.sh for the npm pairs)")
                continue
            (store / name).mkdir(parents=True, exist_ok=True)
            for v, f in (("1", found[0]), ("2", found[1])):
                link = store / name / (v + f.suffix)
                if not link.exists():
                    link.symlink_to(f)
            if name in a.pairs:
                chosen.append((name, *found))
        server = Server(work, store)
        try:
            rows = []
            for name, old, new in chosen:
                r = bench_pair(name, old, new, work, server)
                rows.append(r)
                print(f"{name:42s} new {r['new'] / 1e6:7.2f} MB  patch {r['patch'] / 1e3:9.1f} kB  agent "
                      f"{mib(r['agent_rss']):>6} MiB {r['agent_s'] * 1000:6.0f} ms  apply {r['apply_s'] * 1000:6.0f} ms",
                      flush=True)
            fl = None
            if a.fleet:
                fp = find_pair(FLEET_PAIR)
                fl = fleet(a.fleet, work, server, *fp)
                print(f"fleet of {fl['n']}: agents {fl['agents_s']:.2f} s ({fl['ok']} ok), curl {fl['curl_s']:.2f} s")
        finally:
            server.stop()
    text = report(rows, fl)
    print("\n" + text)
    doc_sections.write_section(a.out, "agent", "Edge agent (mallorn-agent)", text)
    if fl and fl["ok"] != fl["n"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
