"""The web preview source: parse rate, a polling round over many channels, memory over many rounds.

    python benchmarks/web_preview_benchmark.py [--channels 500] [--latency 0.05] [--delay 0.1]
                                               [--rounds 10000] [--model data/model.joblib]

1. Parse: saved t.me/s pages (the hand-written test page and 20-post pages in the same structure, with
   texts of the bundled corpus) read by bot.web_preview_page.parse_page on one core, posts/s; beside it,
   in the same run, the cost of selectolax building the tree alone (the floor any reader pays).
2. Round: --channels channels on the fake t.me (tests/fakes/web_preview.py, HTTP on 127.0.0.1) answering
   each request after --latency seconds, read with WATCH_MIN_DELAY_SECONDS = --delay. The politeness limit
   is channels x max(delay, latency): a polite reader cannot be faster. Prints the first round (every post
   new: classified and stored) and the second (nothing new) against that limit.
3. Memory: --rounds rounds over one channel (a new post every tenth round), delay 0; RSS (from /proc) and
   Python heap (tracemalloc off: it slows everything) after the first 10% and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selectolax.lexbor import LexborHTMLParser  # noqa: E402

from bot.services import Services  # noqa: E402
from bot.storage import Storage  # noqa: E402
from bot.watched_channels import add_channels, poll_round  # noqa: E402
from bot.web_preview_fetch import PoliteFetcher  # noqa: E402
from bot.web_preview_page import parse_page  # noqa: E402
from tests.fakes.classifier import FakeClassifier  # noqa: E402
from tests.fakes.web_preview import FakeChannel, FakeWebPreview, render_page  # noqa: E402

FIXTURE = ROOT / "tests" / "fakes" / "web_preview_pages" / "channel.html"


def corpus_texts(n: int) -> list[str]:
    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus

    posts = load_corpus([BUNDLED_DATA_DIR])
    return [posts[i % len(posts)].text for i in range(n)]


def saved_pages(texts: list[str]) -> list[tuple[str, int]]:
    """(html, posts) pages: the hand-written one, then 20-post pages of corpus texts."""
    pages = [(FIXTURE.read_text(encoding="utf-8"), 8)]
    for start in range(0, len(texts), 20):
        channel = FakeChannel("gems", "Gems", channel_id=1987654321)
        for i, text in enumerate(texts[start : start + 20]):
            channel.post(start + i + 1, text, edited=i % 7 == 0)
        pages.append((render_page(channel), len(channel.posts)))
    return pages


def bench_parse(pages, repeat: int = 3) -> None:
    posts = sum(n for _, n in pages)
    best_parse = best_tree = float("inf")
    for _ in range(repeat):  # alternating, fastest kept: the machine is shared
        t = time.perf_counter()
        for html, _ in pages:
            parse_page(html)
        best_parse = min(best_parse, time.perf_counter() - t)
        t = time.perf_counter()
        for html, _ in pages:
            LexborHTMLParser(html).css_first(".tgme_channel_info")
        best_tree = min(best_tree, time.perf_counter() - t)
    kb = sum(len(h.encode()) for h, _ in pages) / 1024
    print(f"parse: {len(pages)} pages, {posts} posts, {kb:,.0f} KiB")
    print(f"  parse_page         {posts / best_parse:10,.0f} posts/s  ({best_parse * 1000 / len(pages):.2f} ms a page)")
    print(f"  tree only (floor)  {posts / best_tree:10,.0f} posts/s  ({best_tree * 1000 / len(pages):.2f} ms a page)")
    print(f"  parse_page / tree only: x{best_parse / best_tree:.2f} the time")


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def bench_round(classifier, channels: int, latency: float, delay: float, texts: list[str]) -> None:
    fake = FakeWebPreview(latency=latency).start()
    try:
        for c in range(channels):
            channel = fake.channel(f"channel{c:04d}", f"Channel {c}")
            for i in range(20):
                channel.post(i + 1, texts[(c * 20 + i) % len(texts)])
        with tempfile.TemporaryDirectory() as tmp:
            storage = Storage.open(Path(tmp) / "bench.db")
            svc = Services(storage, classifier, None, frozenset())
            setup = PoliteFetcher(fake.base_url, min_delay=0.0)
            async with setup.session() as f:
                await add_channels(storage, f, [f"channel{c:04d}" for c in range(channels)])
            fetcher = PoliteFetcher(fake.base_url, min_delay=delay)
            limit = channels * max(delay, latency)
            for name in ("first round (all new)", "second round (nothing new)"):
                before = len(fake.requests)
                t = time.perf_counter()
                async with fetcher.session() as f:
                    summary = await poll_round(svc, f)
                took = time.perf_counter() - t
                print(
                    f"  {name}: {took:6.1f} s for {len(fake.requests) - before} requests, "
                    f"{summary.total('new')} posts stored, {summary.errors} problems; "
                    f"politeness limit {limit:.1f} s: x{took / limit:.3f}; most requests at once: {fake.max_in_flight}"
                )
            storage.close()
    finally:
        fake.stop()


async def bench_memory(classifier, rounds: int) -> None:
    fake = FakeWebPreview().start()
    try:
        channel = fake.channel("MoonGems", "Moon Gems")
        for i in range(20):
            channel.post(i + 1, f"update {i}")
        with tempfile.TemporaryDirectory() as tmp:
            storage = Storage.open(Path(tmp) / "bench.db")
            svc = Services(storage, classifier, None, frozenset())
            fetcher = PoliteFetcher(fake.base_url, min_delay=0.0)
            async with fetcher.session() as f:
                await add_channels(storage, f, ["MoonGems"])
            marks = {}
            t = time.perf_counter()
            for r in range(1, rounds + 1):
                if r % 10 == 0:
                    channel.post(20 + r // 10, f"update {r}")
                async with fetcher.session() as f:
                    await poll_round(svc, f)
                if r in (rounds // 10, rounds):
                    marks[r] = rss_mib()
                    fake.requests.clear()  # the fake's own log is not the reader's memory
            took = time.perf_counter() - t
            storage.close()
        first, last = marks[rounds // 10], marks[rounds]
        print(
            f"  {rounds} rounds in {took:.0f} s ({took / rounds * 1000:.1f} ms each): RSS {first:.1f} MiB after "
            f"{rounds // 10} rounds, {last:.1f} MiB after {rounds} (+{last - first:.1f} MiB); "
            f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
        )
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--delay", type=float, default=0.1, help="WATCH_MIN_DELAY_SECONDS for the round")
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--model", type=Path, help="a trained model; default: the keyword fake classifier")
    args = parser.parse_args()
    texts = corpus_texts(2_000)
    bench_parse(saved_pages(texts))
    if args.model:
        from classifier import load_model

        classifier, what = load_model(args.model), f"model {args.model}"
    else:
        classifier, what = FakeClassifier(), "the keyword fake classifier"
    print(f"round: {args.channels} channels x 20 posts, server latency {args.latency} s, delay {args.delay} s, {what}")
    asyncio.run(bench_round(classifier, args.channels, args.latency, args.delay, texts))
    print(f"memory: one channel, {args.rounds} rounds, delay 0")
    asyncio.run(bench_memory(classifier, args.rounds))


if __name__ == "__main__":
    main()
