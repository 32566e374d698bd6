"""The GIL is released while the engine works, so threads patch in parallel.

The proof does not time anything against a threshold. If a call held the GIL, no other Python
code could run while it worked: no two calls could be in flight together (each thread stamps its
start in Python before calling), and the main thread's heartbeat loop could not tick while any
call was inside the engine. So the test requires a window in which all N calls were in flight
at once (from the last start to the first end) and more than 2N heartbeats stamped inside it.
With a held GIL such a window can exist (a thread may lose the GIL between its stamp and the
engine call), but the main thread can only tick at the few moments a thread is about to enter
the engine: about one heartbeat per thread, never 2N. With the GIL released it ticks hundreds
of times.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import mallorn
from conftest import MODELS, link, pair_files

WORKERS = 4
BIG_PAIR = MODELS / "pairs" / "coral-mnv2-quant_2020-to-2021a"  # level 9: ~1 s of work per call


def run_concurrently(calls):
    """Runs the calls on their own threads, started together; returns their (start, end) stamps
    and the main thread's heartbeat stamps taken meanwhile."""
    barrier = threading.Barrier(len(calls))
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * len(calls)

    def worker(i):
        barrier.wait()
        start = time.perf_counter()
        calls[i]()
        spans[i] = (start, time.perf_counter())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    beats = []
    while any(t.is_alive() for t in threads):
        beats.append(time.perf_counter())
        time.sleep(0.001)
    for t in threads:
        t.join()
    return spans, beats


def test_create_patch_calls_run_in_parallel(tmp_path):
    old, new = pair_files(BIG_PAIR)
    calls = [
        (lambda i=i: mallorn.create_patch(old, new, tmp_path / f"{i}.tflp", compression_level=9))
        for i in range(WORKERS)
    ]
    spans, beats = run_concurrently(calls)
    all_in_flight = (max(s for s, _ in spans), min(e for _, e in spans))
    assert all_in_flight[0] < all_in_flight[1], f"the calls never overlapped: {spans}"
    inside = [b for b in beats if all_in_flight[0] < b < all_in_flight[1]]
    assert len(inside) > 2 * WORKERS, f"the main thread was blocked while the calls ran ({len(inside)} beats)"
    for i in range(WORKERS):  # and the parallel results are right
        mallorn.apply_patch(old, tmp_path / f"{i}.tflp", tmp_path / f"{i}.out")
        assert (tmp_path / f"{i}.out").read_bytes() == new.read_bytes()


def test_verify_patch_calls_run_in_parallel(tmp_path):
    # verify_patch decodes the whole target: on a real model that is a few milliseconds now, too
    # short a window for the heartbeat to tell a released GIL from a held one. A 16 MiB raw pair
    # (bytes that do not compress, a change every 4 KiB) keeps both calls busy for a while.
    rng = random.Random(11)
    old_bytes = rng.randbytes(16 << 20)
    new_bytes = bytearray(old_bytes)
    for at in range(0, len(new_bytes), 4096):
        new_bytes[at] ^= 0x5A
    old, new, patch = tmp_path / "old.bin", tmp_path / "new.bin", tmp_path / "p"
    old.write_bytes(old_bytes)
    new.write_bytes(bytes(new_bytes))
    mallorn.create_patch(old, new, patch, tensor_aware=False, compression_level=1)
    spans, beats = run_concurrently([lambda: mallorn.verify_patch(old, patch)] * 2)
    window = (max(s for s, _ in spans), min(e for _, e in spans))
    assert window[0] < window[1], f"the calls never overlapped: {spans}"
    inside = [b for b in beats if window[0] < b < window[1]]
    assert len(inside) > 4, f"the main thread was blocked while the calls ran ({len(inside)} beats)"


def test_the_seeds_batch_processing_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    pairs = sorted(p for p in (MODELS / "pairs").iterdir() if next(p.glob("old.tflite"), None))
    for pair in pairs:
        link(pair / "old.tflite", Path("models/v1") / f"{pair.name}.tflite")
        link(pair / "new.tflite", Path("models/v2") / f"{pair.name}.tflite")
    Path("patches").mkdir()  # the seed's example expects the output directory to exist

    # --- seed: Batch Processing (verbatim) ---
    import mallorn
    from pathlib import Path as SeedPath
    from concurrent.futures import ThreadPoolExecutor

    def process_model_pair(old_path, new_path, output_dir):
        name = old_path.stem
        output = output_dir / f"{name}.tflp"
        return mallorn.create_patch(str(old_path), str(new_path), str(output))

    # Process multiple model pairs in parallel
    old_models = SeedPath("models/v1").glob("*.tflite")
    new_models = SeedPath("models/v2")
    output_dir = SeedPath("patches")

    with ThreadPoolExecutor(max_workers=4) as executor:
        futures = []
        for old in old_models:
            new = new_models / old.name
            if new.exists():
                futures.append(executor.submit(
                    process_model_pair, old, new, output_dir
                ))

        for future in futures:
            stats = future.result()
            print(f"Created patch: {stats.patch_size} bytes")
    # --- end of seed ---

    lines = capsys.readouterr().out.splitlines()
    assert len(pairs) >= 5 and len(lines) == len(pairs)
    for pair in pairs:
        patch = Path("patches") / f"{pair.name}.tflp"
        assert f"Created patch: {patch.stat().st_size} bytes" in lines
        mallorn.apply_patch(pair / "old.tflite", patch, "out.tflite")
        assert Path("out.tflite").read_bytes() == (pair / "new.tflite").read_bytes()
