"""Scan throughput and memory on a generated Telegram Desktop export, with 1 and N worker processes.

    python benchmarks/scan_benchmark.py [--messages 50000,200000] [--workers 1,2] [--repeat 1]
                                        [--model data/model.joblib] [--breakdown]

Writes a made-up single-channel export of N messages (text as a string, or a list with text_link
entities, like real exports; a few photos without captions) to a temporary directory, then runs
`compliance-bot scan --workers W` on it against a fresh database, for every W in turn (alternating when
repeated, so a change in the machine's load hits every W alike). Prints per run: wall time, posts/s,
peak RSS of the main process and of the largest worker (getrusage inside the scan process), the peak of
the whole process tree's RSS and PSS (sampled from /proc; PSS shares the pages forked workers have in
common with the main process), and the CPU other processes used meanwhile (this machine is shared:
compare runs of one invocation, not figures across days). Then the speed-up of each W over the first.

--breakdown also times the stages alone, in this process, on the largest export: reading the export,
classifying, pickling verdicts to and from a worker, and storing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TEXTS = [
    "Bitcoin holds above 64k as Asian markets open; volumes are thin ahead of the CPI print #{n}",
    "Presale stage {n} is live! 1 BNB = 42,000 NOVA, buy now before the price goes up",
    "长期收U，汇率置顶，见U打款，支持支付宝 {n}",
    "The SEC sued the organisers of a 2017 ICO, filing number {n}",
    "以太坊今日小幅回调，短线支撑在 3,100 美元附近 {n}",
    "VIP signals: last week +{n}% join before we close the doors",
]

# Run inside the scan process: its own peak RSS and that of its largest (already reaped) worker.
SCAN = """
import atexit, resource, sys
atexit.register(lambda: sys.stderr.write("\\nPEAK-RSS-KB %d %d\\n" % (
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)))
from bot.cli import cli
cli()
"""


def write_export(path: Path, count: int) -> None:
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"name": "Benchmark Channel", "type": "public_channel", "id": 1999000111, "messages": [\n')
        for n in range(1, count + 1):
            text = rng.choice(TEXTS).format(n=n)
            message = {
                "id": n,
                "type": "message",
                "date": "2024-03-01T09:00:00",
                "date_unixtime": str(1709283600 + n),
                "from": "Benchmark Channel",
                "from_id": "channel1999000111",
            }
            if n % 50 == 0:
                message |= {"photo": "photos/p.jpg", "text": "", "text_entities": []}
            elif n % 3 == 0:
                link = {"type": "text_link", "text": "here", "href": f"https://example.com/{n}"}
                message |= {"text": [text + " ", link], "text_entities": [{"type": "plain", "text": text + " "}, link]}
            else:
                message |= {"text": text, "text_entities": [{"type": "plain", "text": text}]}
            out.write(json.dumps(message, ensure_ascii=False) + (",\n" if n < count else "\n"))
        out.write("]}\n")


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq, steal)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def _tree_memory(pid: int) -> tuple[int, int]:
    """RSS and PSS in kB of a process and its children, from /proc (0 for what has gone)."""
    rss = pss = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for p in [pid, *map(int, children)]:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def run_scan(export: Path, db: Path, model: str, workers: int) -> dict:
    env = {"DATABASE_PATH": str(db), "MODEL_PATH": model, "PATH": "", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", SCAN, "scan", "--workers", str(workers), str(export)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = _busy_seconds()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = [0, 0]

    def sample():
        while process.poll() is None:
            rss, pss = _tree_memory(process.pid)
            peaks[0], peaks[1] = max(peaks[0], rss), max(peaks[1], pss)
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    marker = [line for line in stderr.splitlines() if line.startswith("PEAK-RSS-KB ")]
    main_kb, worker_kb = map(int, marker[-1].split()[1:]) if marker else (0, 0)
    lines = stdout.splitlines()
    return {
        "workers": workers,
        "seconds": seconds,
        "exit": process.returncode,
        "summary": lines[2] if len(lines) > 2 else "",
        "error": "" if process.returncode == 0 else stderr[-2000:],
        "main_mb": main_kb / 1024,
        "worker_mb": worker_kb / 1024,
        "tree_rss_mb": peaks[0] / 1024,
        "tree_pss_mb": peaks[1] / 1024,
        "cpu": own_cpu,
        "other_cores": max(0.0, (_busy_seconds() - busy - own_cpu) / seconds),
    }


def breakdown(export: Path, db: Path, model_path: str) -> None:
    """Each stage of a scan alone, in this process, to see which one a worker pool can take off the main process."""
    import pickle
    from dataclasses import replace

    sys.path.insert(0, str(ROOT))
    from bot.desktop_export import ReadCounts
    from bot.history_scan import BATCH, _Chats, _store, read_posts
    from bot.scan_summary import FileSummary, ScanSummary
    from bot.storage import Storage
    from classifier import load_model

    started = time.perf_counter()
    with open(export, "rb") as handle:
        posts = list(read_posts(export, handle, print, ReadCounts()))
    parse = time.perf_counter() - started
    model = load_model(model_path)
    batches = [posts[i : i + BATCH] for i in range(0, len(posts), BATCH)]
    started = time.perf_counter()
    verdicts = [model.predict_many([p.text for p in batch]) for batch in batches]
    classify = time.perf_counter() - started
    started = time.perf_counter()
    sent = [pickle.dumps([p.text for p in batch]) for batch in batches]
    returned = [pickle.dumps([v if v.is_promotion else replace(v, reasons=[]) for v in vs]) for vs in verdicts]
    worker_side = time.perf_counter() - started
    started = time.perf_counter()
    for blob in returned:
        pickle.loads(blob)
    main_side = time.perf_counter() - started
    storage = Storage.open(db)
    summary, file_summary = ScanSummary(), FileSummary(str(export))
    chats = _Chats(storage)
    started = time.perf_counter()
    for batch, vs in zip(batches, verdicts):
        _store(batch, vs, storage, chats, file_summary, summary, False)
    store = time.perf_counter() - started
    storage.close()
    # The store path before the batch one, for comparison: Storage.record_scan post by post, a batch a transaction.
    before = Storage.open(db.with_name(f"{db.stem}-post-by-post.db"))
    started = time.perf_counter()
    for batch, vs in zip(batches, verdicts):
        with before.transaction():
            for post, verdict in zip(batch, vs):
                before.record_scan(post, verdict, threshold=float("inf"), store_benign_text=False)
    one_by_one = time.perf_counter() - started
    before.close()
    n = len(posts)
    print(
        f"\nstages alone, {n:,} posts (µs a post): read the export {parse / n * 1e6:.0f}, classify "
        f"{classify / n * 1e6:.0f}, store {store / n * 1e6:.0f}; pickling for workers: texts out and verdicts in "
        f"{worker_side / n * 1e6:.0f} (worker side, mostly), verdicts unpickled {main_side / n * 1e6:.0f} "
        f"(main side); {sum(map(len, sent)) / n:.0f} + {sum(map(len, returned)) / n:.0f} bytes a post"
    )
    print(
        f"main process with workers: read + unpickle + store = {(parse + main_side + store) / n * 1e6:.0f} µs a post; "
        f"in-process scan: read + classify + store = {(parse + classify + store) / n * 1e6:.0f} µs a post"
    )
    print(
        f"storing post by post (Storage.record_scan, as before the batch path): {one_by_one / n * 1e6:.0f} µs a post; "
        f"the batch path (Storage.record_scans) is x{one_by_one / store:.2f} faster"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="200000", help="comma-separated sizes (default 200000)")
    parser.add_argument("--workers", default=f"1,{len(os.sched_getaffinity(0))}", help="comma-separated worker counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each worker count, alternating")
    parser.add_argument("--model", default="data/model.joblib")
    parser.add_argument("--breakdown", action="store_true", help="also time each stage alone on the largest export")
    args = parser.parse_args()
    sizes = [int(x) for x in args.messages.split(",")]
    worker_counts = list(dict.fromkeys(int(x) for x in args.workers.split(",")))
    model = str(Path(args.model).resolve())
    print(f"{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable; Python {sys.version.split()[0]}")
    print(
        f"{'messages':>8} {'MB':>6} {'workers':>7} {'wall s':>7} {'posts/s':>8} {'main MB':>8} {'worker MB':>9} "
        f"{'tree RSS':>8} {'tree PSS':>8} {'others':>6}"
    )
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            export = Path(tmp) / f"result-{size}.json"
            write_export(export, size)
            posts = size - size // 50
            rates: dict[int, list[float]] = {w: [] for w in worker_counts}
            for _ in range(args.repeat):
                for workers in worker_counts:
                    db = Path(tmp) / f"bench-{size}-{workers}.db"
                    for stale in Path(tmp).glob(db.name + "*"):
                        stale.unlink()
                    r = run_scan(export, db, model, workers)
                    if r["exit"] != 0:
                        failed += 1
                        print(f"scan --workers {workers} failed (exit {r['exit']}):\n{r['error']}")
                        continue
                    rates[workers].append(posts / r["seconds"])
                    print(
                        f"{size:>8} {export.stat().st_size / 1e6:>6.1f} {workers:>7} {r['seconds']:>7.1f} "
                        f"{posts / r['seconds']:>8,.0f} {r['main_mb']:>8.0f} {r['worker_mb'] or float('nan'):>9.0f} "
                        f"{r['tree_rss_mb']:>8.0f} {r['tree_pss_mb']:>8.0f} {r['other_cores']:>6.2f}",
                        flush=True,
                    )
            base = worker_counts[0]
            for workers in worker_counts[1:]:
                pairs = [b / a for a, b in zip(rates[base], rates[workers])]
                if pairs:
                    print(
                        f"{size:>8}: --workers {workers} / --workers {base}: "
                        + ", ".join(f"x{p:.2f}" for p in pairs)
                        + (f" (median x{statistics.median(pairs):.2f})" if len(pairs) > 1 else ""),
                        flush=True,
                    )
        if args.breakdown:
            breakdown(export, Path(tmp) / "breakdown.db", model)
    print(
        "tree RSS counts pages shared by forked workers once per process; tree PSS divides them among them. "
        "'others': cores used by other processes during the run."
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
