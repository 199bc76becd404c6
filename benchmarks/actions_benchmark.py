"""What acting on flags costs: storing actors with every post, ranking offenders, the alert's extras.

    python benchmarks/actions_benchmark.py [--posts 50000] [--users 2000] [--chats 50]

1. Storing: ``Storage.record_scan`` of the same posts with and without actors (which add one ``post_actors``
   row per kept post), on fresh databases, in alternating rounds; the fastest round of each is kept.
2. Ranking: on the database stored with actors (a share of its flags confirmed), ``offenders`` over all time
   and 30 days, and one sender's ``history`` (what each alert render asks per actor), against ``period_figures``
   of 30 days (what /stats and the digest compute) as the reference measured in the same run.
3. Rendering: one alert with its extras (sender, history, actions, buttons) against the review alone.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.actors import Actors  # noqa: E402
from bot.alert_actions import AlertActions, Rights, RightsCache  # noqa: E402
from bot.alerts import AlertView, render_alert  # noqa: E402
from bot.offenders import history, offenders  # noqa: E402
from bot.post import Post  # noqa: E402
from bot.storage import Storage  # noqa: E402
from tests.fakes.classifier import FakeClassifier  # noqa: E402

TEXTS = ["Presale of $TOKEN{n} ends Friday", "VIP signals group {n}, join now", "nice weather today {n}"]


def make_posts(n: int, users: int, chats: int, seed: int = 7) -> list[Post]:
    rng = random.Random(seed)
    start = time.time() - 90 * 86400
    posts = []
    for i in range(n):
        user = rng.randrange(users)
        forward = rng.randrange(200) if rng.random() < 0.2 else None
        actors = Actors(
            "user",
            100_000 + user,
            f"user{user}" if user % 3 else None,
            f"User {user}",
            forward_chat_id=-1_002_000_000_000 - forward if forward is not None else None,
            forward_chat_title=f"Source {forward}" if forward is not None else None,
        )
        chat = -1_001_000_000_000 - rng.randrange(chats)
        text = rng.choice(TEXTS).format(n=i)
        date = start + i * 90 * 86400 / n
        posts.append(
            Post(chat, i + 1, text, date=date, chat_type="supergroup", chat_title=f"Chat {chat}", actors=actors)
        )
    return posts


def store(path: Path, posts: list[Post], verdicts, with_actors: bool) -> float:
    storage = Storage.open(path)
    began = time.perf_counter()
    with storage.transaction():
        for post, verdict in zip(posts, verdicts):
            if not with_actors:
                post = Post(post.chat_id, post.message_id, post.text, post.date, post.chat_type, post.chat_title)
            storage.record_scan(post, verdict, threshold=0.8, store_benign_text=False)
    seconds = time.perf_counter() - began
    storage.close()
    return len(posts) / seconds


def timed(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    posts = make_posts(args.posts, args.users, args.chats)
    classifier = FakeClassifier()
    verdicts = [classifier.predict(p.text) for p in posts]
    work = Path(tempfile.mkdtemp(prefix="actions-bench-"))
    rates = {True: [], False: []}
    for r in range(args.rounds):
        for with_actors in (False, True):
            path = work / f"{'with' if with_actors else 'without'}-{r}.db"
            rates[with_actors].append(store(path, posts, verdicts, with_actors))
    best_with, best_without = max(rates[True]), max(rates[False])
    print(f"posts: {args.posts:,}, users: {args.users:,}, chats: {args.chats}, rounds: {args.rounds}")
    print(f"record_scan without actors: {best_without:,.0f} posts/s")
    print(f"record_scan with actors:    {best_with:,.0f} posts/s (x{best_with / best_without:.2f})")

    storage = Storage.open(work / "with-0.db")
    rng = random.Random(3)
    flags = list(storage.db.query("SELECT id, alert_id FROM flags"))
    with storage.transaction():
        for flag in flags:
            if rng.random() < 0.6:
                storage.db.execute("UPDATE flags SET status = 'confirmed' WHERE id = ?", [flag["id"]])
    confirmed = storage.db.execute("SELECT COUNT(*) FROM flags WHERE status = 'confirmed'").fetchone()[0]
    print(f"flags: {len(flags):,}, confirmed: {confirmed:,}")
    end = storage.clock()
    reference = timed(lambda: storage.period_figures(end - 30 * 86400, end), 5)
    rank_all = timed(lambda: offenders(storage), 5)
    rank_30 = timed(lambda: offenders(storage, 30), 5)
    one = timed(lambda: history(storage, "user", 100_000 + rng.randrange(args.users), 1), 200)
    print(f"period_figures 30 days (reference): {reference * 1000:.1f} ms")
    print(f"offenders all time: {rank_all * 1000:.1f} ms (x{rank_all / reference:.2f} the reference)")
    print(f"offenders 30 days:  {rank_30 * 1000:.1f} ms (x{rank_30 / reference:.2f})")
    print(f"history of one sender: {one * 1000:.2f} ms")

    rights = RightsCache(ttl=1e9)
    extras = AlertActions(storage, rights, lambda: b"k" * 16)
    alert = storage.alert(flags[-1]["alert_id"])
    for flag in storage.alert_flags(alert["id"]):
        rights._known[flag["chat_id"]] = (rights.clock(), Rights(True, True, "administrator"))

    def view():
        return AlertView(alert, storage.alert_flags(alert["id"]), storage.last_review(alert["id"]))

    plain = timed(lambda: render_alert([view()], b"k" * 16), 200)
    full = timed(lambda: render_alert([view()], b"k" * 16, extras=extras), 200)
    print(
        f"render one alert: {plain * 1000:.2f} ms review only, {full * 1000:.2f} ms with extras (x{full / plain:.2f})"
    )
    storage.close()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
