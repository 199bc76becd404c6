"""Scan throughput on a generated Telegram Desktop export.

    python benchmarks/scan_benchmark.py [--messages 200000] [--model data/model.joblib]

Writes a made-up single-channel export of N messages (text as a string, or a list with text_link
entities, like real exports; a few photos without captions) to a temporary directory, then runs
`compliance-bot scan` on it against a fresh database and prints posts/s, wall time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXTS = [
    "Bitcoin holds above 64k as Asian markets open; volumes are thin ahead of the CPI print #{n}",
    "Presale stage {n} is live! 1 BNB = 42,000 NOVA, buy now before the price goes up",
    "长期收U，汇率置顶，见U打款，支持支付宝 {n}",
    "The SEC sued the organisers of a 2017 ICO, filing number {n}",
    "以太坊今日小幅回调，短线支撑在 3,100 美元附近 {n}",
    "VIP signals: last week +{n}% join before we close the doors",
]


def write_export(path: Path, count: int) -> None:
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"name": "Benchmark Channel", "type": "public_channel", "id": 1999000111, "messages": [\n')
        for n in range(1, count + 1):
            text = rng.choice(TEXTS).format(n=n)
            message = {"id": n, "type": "message", "date": "2024-03-01T09:00:00", "date_unixtime": str(1709283600 + n),
                       "from": "Benchmark Channel", "from_id": "channel1999000111"}
            if n % 50 == 0:
                message |= {"photo": "photos/p.jpg", "text": "", "text_entities": []}
            elif n % 3 == 0:
                link = {"type": "text_link", "text": "here", "href": f"https://example.com/{n}"}
                message |= {"text": [text + " ", link], "text_entities": [{"type": "plain", "text": text + " "}, link]}
            else:
                message |= {"text": text, "text_entities": [{"type": "plain", "text": text}]}
            out.write(json.dumps(message, ensure_ascii=False) + (",\n" if n < count else "\n"))
        out.write("]}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--model", default="data/model.joblib")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "result.json"
        started = time.perf_counter()
        write_export(export, args.messages)
        print(f"export: {args.messages} messages, {export.stat().st_size / 1e6:.1f} MB, written in "
              f"{time.perf_counter() - started:.1f} s")
        env = {"DATABASE_PATH": str(Path(tmp) / "bench.db"), "MODEL_PATH": args.model, "PATH": ""}
        command = [sys.executable, "-c", "from bot.cli import cli; cli()", "scan", str(export)]
        started = time.perf_counter()
        done = subprocess.run(command, env=env | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(done.stdout.splitlines()[2] if done.stdout else done.stderr[-2000:])
        posts = args.messages - args.messages // 50
        print(f"scan: {seconds:.1f} s wall (model load included), {posts / seconds:,.0f} posts/s, peak memory {peak:.0f} MB, "
              f"exit {done.returncode}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
