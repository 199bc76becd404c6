"""bulk-scan throughput and memory per worker on generated posts, on a local Dask cluster of 1 and N workers.

    python benchmarks/bulk_scan_benchmark.py [--posts 100000,1000000] [--workers 1,2] [--per-file 12500]
                                             [--repeat 1] [--model data/model.joblib]

Writes N made-up posts (scan_benchmark.py's texts: news, presales, OTC desks, signal groups, in English
and Chinese) as JSONL files of --per-file posts (one partition each) in a temporary directory, then for every worker count W in
turn starts a LocalCluster of W single-threaded worker processes and times `bot.bulk_scan.bulk_scan` on
them (the cluster's start is timed apart: a real cluster is started once for many scans). Prints per run:
wall time, posts/s, the peak RSS of each worker (getrusage inside the worker, from summary.json), the
client's peak RSS, and the CPU other processes used meanwhile (this machine is shared: compare runs of
one invocation); then the speed-up of each W over the first.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scan_benchmark import TEXTS  # noqa: E402  the same made-up posts as the scan benchmark


def write_posts(directory: Path, count: int, files: int) -> None:
    rng = random.Random(0)
    per_file = -(-count // files)
    n = 0
    for f in range(files):
        with open(directory / f"posts-{f:03d}.jsonl", "w", encoding="utf-8") as out:
            for _ in range(min(per_file, count - n)):
                n += 1
                post = {
                    "text": rng.choice(TEXTS).format(n=n),
                    "channel": f"channel{n % 1000}",
                    "id": n,
                    "date": 1_700_000_000 + n,
                }
                out.write(json.dumps(post, ensure_ascii=False) + "\n")


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent (less this process tree's: what other processes took)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def run(inputs: Path, out: Path, workers: int, model: Path) -> dict:
    from distributed import Client, LocalCluster

    from bot.bulk_scan import bulk_scan

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(workers)
        started = time.perf_counter() - start
        machine_before, workers_before, own_before = machine_cpu(), sum(client.run(_cpu).values()), _cpu()
        t0 = time.perf_counter()
        summary = bulk_scan(client, [str(inputs)], out, model_path=model)
        wall = time.perf_counter() - t0
        worker_cpu = sum(client.run(_cpu).values()) - workers_before
        others = machine_cpu() - machine_before - worker_cpu - (_cpu() - own_before)
    shutil.rmtree(out)
    return {
        "workers": workers,
        "start": started,
        "wall": wall,
        "posts": summary["posts"],
        "flags": summary["flags"],
        "rate": summary["posts"] / wall,
        "worker_rss": sorted(w["peak_rss_mb"] for w in summary["workers"].values()),
        "client_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "others": others / wall,
        # Posts per CPU-second the workers got: what a core does, whatever share of it other processes took.
        "per_cpu_second": summary["posts"] / worker_cpu,
    }


def _cpu() -> float:
    """CPU seconds of the calling process (run in every worker too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", default="100000,1000000", help="comma-separated post counts")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument(
        "--per-file", type=int, default=12_500, help="posts a JSONL file (a partition): more posts, more partitions"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--model", type=Path, default=ROOT / "data" / "model.joblib")
    args = parser.parse_args()
    model = args.model.resolve()
    if not model.exists():
        sys.exit(f"no model at {model}: train one (compliance-bot train) or pass --model")
    counts = [int(x) for x in args.posts.split(",")]
    worker_counts = [int(x) for x in args.workers.split(",")]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    print(
        "posts      workers  start   wall      posts/s  speed-up  posts/worker-CPU-s  peak RSS per worker  client RSS"
        "  others (cores)"
    )
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="bulk-bench-") as tmp:
            inputs = Path(tmp) / "posts"
            inputs.mkdir()
            write_posts(inputs, count, -(-count // args.per_file))
            results: dict[int, list[dict]] = {w: [] for w in worker_counts}
            for round_ in range(args.repeat):
                order = worker_counts if round_ % 2 == 0 else worker_counts[::-1]
                for workers in order:
                    r = run(inputs, Path(tmp) / "out", workers, model)
                    results[workers].append(r)
                    base = results[worker_counts[0]][-1]["rate"] if results[worker_counts[0]] else r["rate"]
                    print(
                        f"{count:<10,} {workers:<8} {r['start']:5.1f} s {r['wall']:7.1f} s {r['rate']:9,.0f}  "
                        f"x{r['rate'] / base:<7.2f} {r['per_cpu_second']:18,.0f}  {', '.join(f'{x:.0f}' for x in r['worker_rss'])} MB"
                        f"{'':8} {r['client_rss']:.0f} MB    {r['others']:.2f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
