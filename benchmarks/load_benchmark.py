"""End-to-end load on the live bot: the real `compliance-bot run` polling a fake Bot API on 127.0.0.1.

    python benchmarks/load_benchmark.py [--posts 20000] [--slow-fsync-ms 0] [--model PATH]

The stream is built from training_data/ (benign and promotion texts, Chinese and English; each post gets a
serial so no two are the same text), spread over 20 channels. Two phases, each on a fresh database:

1. latency: a paced stream (--rate posts/s for --paced-seconds) with one promotion every 3.5 s, under
   Telegram's 20 messages a minute to a group; reports the delay from the server's view (the update handed
   out by getUpdates -> the sendMessage that carries its alert), and post -> stored for every post;
2. throughput: --posts posts queued at once (one in --promo-every is a promotion); reports posts/s from the
   first update handed out to the last post stored, then watches the alerts for --observe seconds: at most
   20 messages in any 60 s to the moderators' chat, no alert sent twice, every alert sent or still queued.

Peak RSS is the bot process's VmHWM. --slow-fsync-ms N simulates a slow disk: an LD_PRELOAD shim (built with
cc) sleeps N ms in every fsync/fdatasync of the bot process, which SQLite calls on every commit in WAL mode
with synchronous=FULL (Python's default).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.bot_api import FakeBotApiServer  # noqa: E402

TOKEN = "123456:LOAD-benchmark-token"
MODERATORS = -1007777777777
CHANNELS = [
    {"id": -1001000000000 - i, "type": "channel", "title": f"Channel {i}", "username": f"loadch{i}"} for i in range(20)
]

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
static void pause_ms(void) {
    static long ms = -1;
    if (ms < 0) { const char *v = getenv("SLOW_FSYNC_MS"); ms = v ? atol(v) : 0; }
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, 0);
}
int fsync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, "fsync"); pause_ms(); return real(fd); }
int fdatasync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, "fdatasync"); pause_ms(); return real(fd); }
"""


def corpus() -> tuple[list[str], list[str]]:
    benign, promo = [], []
    for path in sorted((ROOT / "training_data").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                (benign if row["label"] == "benign" else promo).append(row["text"])
    return benign, promo


class Stream:
    def __init__(self, seed: int = 0):
        self.benign, self.promo = corpus()
        self.rng = random.Random(seed)
        self.next_id = {c["id"]: 1 for c in CHANNELS}
        self.serial = 0

    def post(self, promotion: bool) -> dict:
        chat = self.rng.choice(CHANNELS)
        message_id = self.next_id[chat["id"]]
        self.next_id[chat["id"]] += 1
        self.serial += 1
        text = self.rng.choice(self.promo if promotion else self.benign) + f"\n#{self.serial}"
        return {
            "channel_post": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": chat,
                "sender_chat": chat,
                "text": text,
            }
        }


def build_shim(tmp: Path) -> Path:
    source, library = tmp / "slow_fsync.c", tmp / "slow_fsync.so"
    source.write_text(SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def start_bot(server: FakeBotApiServer, workdir: Path, model: Path, slow_ms: int, shim: Path | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MODERATOR_"))} | {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": server.base_url,
        "MODERATOR_CHAT_ID": str(MODERATORS),
        "MODERATOR_USER_IDS": "111",
        "DATABASE_PATH": str(workdir / "bot.db"),
        "MODEL_PATH": str(model),
        "DIGEST_INTERVAL_MINUTES": "600",
        "MODEL_CHECK_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
    }
    if slow_ms and shim is not None:
        env |= {"LD_PRELOAD": str(shim), "SLOW_FSYNC_MS": str(slow_ms)}
    log = open(workdir / "bot.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import cli; cli()", "run"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not server.api.calls_to("setMyCommands"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the bot did not start:\n{(workdir / 'bot.log').read_text()[-3000:]}")
        time.sleep(0.1)
    return proc


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def query(db: Path, sql: str, args=()):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute(sql, args).fetchall()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def alerts_by_post(api) -> dict[tuple[str, int], list[float]]:
    """(channel username, message_id) -> times of the accepted sendMessage calls that showed it."""
    seen: dict[tuple[str, int], list[float]] = {}
    for call in api.calls_to("sendMessage"):
        if int(call.params["chat_id"]) == MODERATORS:
            for username, message_id in re.findall(r"t\.me/(loadch\d+)/(\d+)", call.params["text"]):
                seen.setdefault((username, int(message_id)), []).append(call.at)
    return seen


def push(server, stream: Stream, promotion: bool, index: dict) -> None:
    update = stream.post(promotion)
    post = update["channel_post"]
    update_id = server.api.push_update(update)
    index[(post["chat"]["username"], post["message_id"])] = (update_id, promotion)


def stored_times(db: Path, index: dict) -> dict[tuple[str, int], float]:
    ids = {c["id"]: c["username"] for c in CHANNELS}
    return {(ids[c], m): t for c, m, t in query(db, "SELECT chat_id, message_id, scanned_at FROM posts")}


def phase_latency(args, model, shim, tmp: Path) -> dict:
    workdir = tmp / "latency"
    workdir.mkdir()
    server = FakeBotApiServer().start()
    proc = start_bot(server, workdir, model, args.slow_fsync_ms, shim)
    stream, index = Stream(seed=1), {}
    started, n, promos = time.monotonic(), 0, 0
    while (elapsed := time.monotonic() - started) < args.paced_seconds:
        due = int(elapsed * args.rate)
        while n < due:
            push(server, stream, False, index)
            n += 1
        if elapsed >= promos * 3.5:
            push(server, stream, True, index)
            promos += 1
        time.sleep(0.005)
    deadline = time.monotonic() + 60
    db = workdir / "bot.db"
    while time.monotonic() < deadline and len(stored_times(db, index)) < len(index):
        time.sleep(0.2)
    time.sleep(args.outbox_wait)
    rss = peak_rss_mb(proc.pid)
    stop(proc)
    server.stop()
    served, alerts, stored = server.api.served_at, alerts_by_post(server.api), stored_times(db, index)
    alerting = {
        (u, m)
        for u, m in query(
            db,
            """SELECT c.username, f.message_id FROM flags f JOIN alerts a
        ON a.id = f.alert_id JOIN chats c ON c.id = f.chat_id WHERE a.notify = 1""",
        )
    }
    alert_delays = [alerts[k][0] - served[index[k][0]] for k in alerting if k in alerts]
    store_delays = [stored[k] - served[index[k][0]] for k in index if k in stored]
    return {
        "posts": len(index),
        "rate": args.rate,
        "promotions": promos,
        "alerting_flags": len(alerting),
        "alerts_sent": sum(k in alerts for k in alerting),
        "alert_p50": pct(alert_delays, 50),
        "alert_p99": pct(alert_delays, 99),
        "alert_max": max(alert_delays, default=float("nan")),
        "store_p50": pct(store_delays, 50),
        "store_p99": pct(store_delays, 99),
        "stored": len(stored),
        "peak_rss_mb": rss,
    }


def phase_throughput(args, model, shim, tmp: Path) -> dict:
    workdir = tmp / "throughput"
    workdir.mkdir()
    server = FakeBotApiServer().start()
    proc = start_bot(server, workdir, model, args.slow_fsync_ms, shim)
    stream, index = Stream(seed=2), {}
    for n in range(args.posts):
        push(server, stream, n % args.promo_every == 0, index)
    db = workdir / "bot.db"
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if query(db, "SELECT COUNT(*) FROM posts")[0][0] >= args.posts:
            break
        time.sleep(0.5)
    count, last = query(db, "SELECT COUNT(*), MAX(scanned_at) FROM posts")[0]
    first = min(server.api.served_at.values())
    ingest_seconds = last - first
    rss_ingest = peak_rss_mb(proc.pid)
    time.sleep(args.observe)  # alerts keep going out under the budget
    rss = peak_rss_mb(proc.pid)
    stop(proc)
    server.stop()
    sent_calls = [c for c in server.api.calls_to("sendMessage") if int(c.params["chat_id"]) == MODERATORS]
    times = sorted(c.at for c in sent_calls)
    max_per_minute = max((sum(1 for t in times if s <= t < s + 60) for s in times), default=0)
    alerts = alerts_by_post(server.api)
    alerting = query(
        db,
        """SELECT c.username, f.message_id, o.sent_at IS NOT NULL FROM flags f JOIN alerts a
        ON a.id = f.alert_id JOIN chats c ON c.id = f.chat_id LEFT JOIN outbox o ON o.id = a.outbox_id
        WHERE a.notify = 1""",
    )
    sent = [(u, m) for u, m, s in alerting if (u, m) in alerts]
    queued = [(u, m) for u, m, s in alerting if (u, m) not in alerts]
    duplicated = [k for k, v in alerts.items() if len(v) > 1]
    posts_per_s = count / ingest_seconds if ingest_seconds > 0 else float("nan")
    return {
        "posts": args.posts,
        "stored": count,
        "ingest_seconds": ingest_seconds,
        "posts_per_s": posts_per_s,
        "flags": query(db, "SELECT COUNT(*) FROM flags")[0][0],
        "alerting_flags": len(alerting),
        "alerts_sent": len(sent),
        "alerts_queued": len(queued),
        "alerts_duplicated": len(duplicated),
        "messages_sent": len(sent_calls),
        "max_messages_in_60s": max_per_minute,
        "peak_rss_mb_ingest": rss_ingest,
        "peak_rss_mb": rss,
        "observe_seconds": args.observe,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--promo-every", type=int, default=8, help="one post in N is a promotion (default 8)")
    parser.add_argument("--rate", type=int, default=500, help="posts/s of the paced latency phase")
    parser.add_argument("--paced-seconds", type=float, default=60)
    parser.add_argument("--outbox-wait", type=float, default=5, help="seconds left for the last alerts (latency)")
    parser.add_argument("--observe", type=float, default=65, help="seconds to watch alerts after the ingest")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--slow-fsync-ms", type=int, default=0)
    parser.add_argument("--model", type=Path, help="a trained model (default: train one from training_data/)")
    parser.add_argument("--phase", choices=["both", "latency", "throughput"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        # Absolute: the bot runs in its own directory, where a relative path names no file, and a bot that
        # finds no model trains one at start-up (which then counted in its peak memory).
        model = args.model.resolve() if args.model else None
        if model is not None and not model.is_file():
            raise SystemExit(f"no model at {model}; train one with `compliance-bot train` or leave out --model")
        if model is None:
            from classifier.train import train_and_save

            model = tmp / "model.joblib"
            train_and_save(model, log=lambda message: None)
        shim = build_shim(tmp) if args.slow_fsync_ms else None
        disk = f"fsync +{args.slow_fsync_ms} ms (LD_PRELOAD shim)" if args.slow_fsync_ms else "local disk"
        print(f"machine: {os.cpu_count()} CPUs; database on {disk}")
        if args.phase in ("both", "latency"):
            r = phase_latency(args, model, shim, tmp)
            print(
                f"latency: {r['posts']} posts paced at {r['rate']}/s + {r['promotions']} promotions; "
                f"{r['stored']} stored; post->stored p50 {r['store_p50'] * 1000:.0f} ms p99 {r['store_p99'] * 1000:.0f} ms; "
                f"{r['alerts_sent']}/{r['alerting_flags']} alerts sent, post->alert p50 {r['alert_p50']:.2f} s "
                f"p99 {r['alert_p99']:.2f} s max {r['alert_max']:.2f} s; peak RSS {r['peak_rss_mb']:.0f} MB"
            )
        if args.phase in ("both", "throughput"):
            r = phase_throughput(args, model, shim, tmp)
            print(
                f"throughput: {r['stored']}/{r['posts']} posts stored in {r['ingest_seconds']:.1f} s = "
                f"{r['posts_per_s']:,.0f} posts/s ingested+classified+stored; peak RSS {r['peak_rss_mb_ingest']:.0f} MB"
            )
            print(
                f"alerts after {r['observe_seconds']:.0f} s: {r['flags']} flags, {r['alerting_flags']} at or above the "
                f"threshold; {r['alerts_sent']} sent in {r['messages_sent']} messages (max {r['max_messages_in_60s']} "
                f"in any 60 s), {r['alerts_queued']} still queued, {r['alerts_duplicated']} sent twice; "
                f"peak RSS {r['peak_rss_mb']:.0f} MB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
