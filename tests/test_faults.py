"""Faults, end to end: the real `compliance-bot run` process against the fake Bot API over HTTP on 127.0.0.1.

Telegram failing (429, 500, no answer, dropped connections), the process SIGKILLed in a burst, the database
locked by another writer or full, a damaged model file. What is checked each time: every post Telegram
considers confirmed (below the highest getUpdates offset the fake received) is in the database once, every
flag above the threshold reaches the moderators once, and the bot recovers without help.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U
from tests.test_app_e2e import PROMO, db_rows, wait_for

pytestmark = pytest.mark.slow

NEWS = [
    "The SEC sued the organisers of a 2017 ICO, court filings show.",
    "Bitcoin closed the week 3% lower as trading volumes thinned.",
    "Our weekly AMA moves to Thursday; questions in the comments please.",
    "Exchange outage yesterday: withdrawals resumed after two hours, the operator said.",
]


def promo(i: int) -> str:
    """A promotion with a text of its own, so that each one makes its own alert (one text is one alert)."""
    return PROMO.replace("$MOON", f"$MOON{i}").replace("moon-sale", f"moon{i}-sale")


def burst(server, first_id: int, count: int, promo_every: int = 10) -> dict[int, str]:
    """Push `count` channel posts, one in `promo_every` a promotion; returns message_id -> text."""
    posts = {}
    for message_id in range(first_id, first_id + count):
        text = promo(message_id) if message_id % promo_every == 0 else f"{NEWS[message_id % len(NEWS)]} #{message_id}"
        server.api.push_update(U.channel_post(message_id, text))
        posts[message_id] = text
    return posts


def alert_links(server) -> Counter:
    """How many times each post was shown to the moderators in an alert Telegram accepted."""
    seen = Counter()
    for call in server.api.calls_to("sendMessage"):
        if call.params["chat_id"] == MODERATOR_CHAT_ID:
            seen.update(int(m) for m in re.findall(r"t\.me/cryptogems/(\d+)", call.params["text"]))
    return seen


def stored(tmp_path) -> Counter:
    """message_id -> how many versions the database holds (a post stored twice would have two)."""
    return Counter(m for (m,) in db_rows(tmp_path, "SELECT message_id FROM post_versions"))


def alerting_flags(tmp_path) -> set[int]:
    return {
        m
        for (m,) in db_rows(
            tmp_path, "SELECT f.message_id FROM flags f JOIN alerts a ON a.id = f.alert_id WHERE a.notify = 1"
        )
    }


def update_message_ids(server, update_ids) -> set[int]:
    """The message ids of the pushed channel posts among `update_ids`."""
    wanted = set(update_ids)
    return {
        u["channel_post"]["message_id"]
        for u in server.api.all_updates
        if u["update_id"] in wanted and "channel_post" in u
    }


@pytest.fixture(autouse=True)
def keep_pushed_updates(server):
    """The fake forgets confirmed updates; keep every pushed one to map update ids to posts."""
    server.api.all_updates = []
    push = server.api.push_update

    def recording_push(update):
        update_id = push(update)
        server.api.all_updates.append({"update_id": update_id} | update)
        return update_id

    server.api.push_update = recording_push


def all_done(server, tmp_path, posts: dict[int, str]) -> bool:
    """Every post stored and every alerting flag alerted."""
    try:
        if set(stored(tmp_path)) != set(posts):
            return False
        return alerting_flags(tmp_path) <= set(alert_links(server))
    except sqlite3.OperationalError:
        return False


def assert_exactly_once(server, tmp_path, posts: dict[int, str]) -> None:
    versions = stored(tmp_path)
    assert set(versions) == set(posts), f"missing {sorted(set(posts) - set(versions))[:20]}"
    assert max(versions.values()) == 1, {m: n for m, n in versions.items() if n > 1}
    flagged = alerting_flags(tmp_path)
    assert flagged, "the burst should have made alerts"
    assert {m for m in posts if posts[m].startswith("Presale")} <= flagged
    links = alert_links(server)
    assert set(links) == flagged
    assert max(links.values()) == 1, {m: n for m, n in links.items() if n > 1}


# -- a) Telegram failing ----------------------------------------------------------------------------------


def test_429_500_silence_and_dropped_connections_lose_and_duplicate_nothing(server, run_bot, tmp_path):
    bot = run_bot()
    server.api.fail("sendMessage", 429, retry_after=2)
    server.api.fail("sendMessage", 500, times=2)
    posts = burst(server, 100, 30)
    wait_for(lambda: server.api.calls_to("sendMessage", ok_only=False), 20, "a first alert attempt")
    # Telegram stops answering: requests hang past the client's timeouts (sendMessage, getUpdates) …
    server.api.outage(8, mode="hang")
    posts |= burst(server, 200, 30)
    time.sleep(8)
    # … then drops every connection for a while.
    server.api.outage(4, mode="close")
    posts |= burst(server, 300, 30)
    wait_for(lambda: all_done(server, tmp_path, posts), 90, "every post stored and every flag alerted")
    time.sleep(2)  # further outbox rounds: nothing more may be sent
    assert_exactly_once(server, tmp_path, posts)
    statuses = [c.status for c in server.api.calls_to("sendMessage", ok_only=False)]
    assert statuses[:3] == [429, 500, 500]
    assert bot.proc.poll() is None, "the bot recovered by itself"
    assert server.api.pending_updates() == 0


# -- b) SIGKILL in a burst ---------------------------------------------------------------------------------


def test_sigkill_in_a_burst_loses_no_confirmed_post_and_alerts_each_flag_once(server, run_bot, tmp_path):
    first = run_bot()
    posts = burst(server, 1000, 3000, promo_every=100)
    wait_for(lambda: server.api.confirmed_offset > 1000, 60, "a third of the burst confirmed")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    confirmed = update_message_ids(server, server.api.confirmed_update_ids())
    assert 0 < len(confirmed) < len(posts), "killed in the middle of the burst"
    # Everything Telegram will never deliver again is already in the database.
    assert confirmed <= set(stored(tmp_path)), f"confirmed but lost: {sorted(confirmed - set(stored(tmp_path)))[:20]}"

    run_bot()
    wait_for(lambda: all_done(server, tmp_path, posts), 120, "the rest of the burst after the restart")
    time.sleep(2)
    versions = stored(tmp_path)
    assert set(versions) == set(posts) and max(versions.values()) == 1
    links = alert_links(server)
    assert set(links) == alerting_flags(tmp_path)
    # Known limit (docs/bot.md): an alert Telegram accepted just before the kill, not yet marked sent, is sent
    # again after the restart. At most that one message's alerts (a batch holds up to 10) can come twice.
    twice = {m for m, n in links.items() if n > 1}
    assert max(links.values()) <= 2 and len(twice) <= 10, twice


# -- c) the database locked by another writer, or full -------------------------------------------------------


def hold_exclusive_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    locked.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def test_a_locked_database_holds_scans_and_confirms_nothing_it_has_not_stored(server, run_bot, tmp_path):
    bot = run_bot()
    posts = burst(server, 10, 20)
    wait_for(lambda: all_done(server, tmp_path, posts), 30, "the first posts")
    locked = threading.Event()
    holder = threading.Thread(target=hold_exclusive_lock, args=(tmp_path / "bot.db", 4.0, locked))
    holder.start()
    locked.wait(5)
    offset_before = server.api.confirmed_offset
    posts |= burst(server, 100, 40)
    time.sleep(2.5)
    # While the file is locked the scans wait in memory, and Telegram is not told they were received.
    assert server.api.confirmed_offset <= offset_before + 1
    holder.join()
    wait_for(lambda: all_done(server, tmp_path, posts), 30, "the held scans stored and alerted")
    time.sleep(1.5)
    assert_exactly_once(server, tmp_path, posts)
    log = bot.log()
    assert "kept in memory for retry" in log and "stored" in log and "scans that had waited" in log


def test_killed_while_the_database_is_locked_the_held_scans_come_again(server, run_bot, tmp_path):
    first = run_bot()
    posts = burst(server, 10, 10)
    wait_for(lambda: all_done(server, tmp_path, posts), 30, "the first posts")
    locked = threading.Event()
    holder = threading.Thread(target=hold_exclusive_lock, args=(tmp_path / "bot.db", 3.0, locked))
    holder.start()
    locked.wait(5)
    posts |= burst(server, 100, 30)
    wait_for(lambda: "kept in memory" in first.log(), 10, "scans held in memory")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    holder.join()
    confirmed = update_message_ids(server, server.api.confirmed_update_ids())
    assert confirmed <= set(stored(tmp_path))  # the held scans were not confirmed to Telegram
    run_bot()
    wait_for(lambda: all_done(server, tmp_path, posts), 30, "the held posts delivered again and stored")
    time.sleep(1.5)
    assert_exactly_once(server, tmp_path, posts)


DISK_FULL_HOOK = """
# Test hook, loaded by Python at start-up (sitecustomize): while the file named by FAULT_DISK_FULL_FILE
# exists, the bot's database may not grow (SQLite's max_page_count), which SQLite reports as a full disk.
import os, sqlite3

_control = os.environ["FAULT_DISK_FULL_FILE"]
import bot.storage as _storage

_open = _storage.Storage.open.__func__


def _apply(db):
    full = os.path.exists(_control)
    limit = db.execute("PRAGMA page_count").fetchone()[0] if full else 1073741823
    db.execute(f"PRAGMA max_page_count = {limit}")


def open_(cls, *args, **kwargs):
    storage = _open(cls, *args, **kwargs)
    record = storage.record_scan

    def record_scan(*a, **k):
        _apply(storage.db)
        return record(*a, **k)

    storage.record_scan = record_scan
    return storage


_storage.Storage.open = classmethod(open_)
"""


def test_a_full_disk_holds_scans_until_there_is_room(server, run_bot, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DISK_FULL_HOOK)
    control = tmp_path / "disk-full"
    import os

    bot = run_bot(
        PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        FAULT_DISK_FULL_FILE=str(control),
        STORE_BENIGN_TEXT="true",
    )
    posts = burst(server, 10, 10)
    wait_for(lambda: all_done(server, tmp_path, posts), 30, "the first posts")
    # Fill the pages SQLite has free, so the next scans need new ones.
    control.touch()
    long_posts = {m: f"{NEWS[m % len(NEWS)]} " + "Long market report. " * 150 + f"#{m}" for m in range(100, 160)}
    for m, text in long_posts.items():
        server.api.push_update(U.channel_post(m, text))
    posts |= long_posts
    wait_for(lambda: "full" in bot.log(), 15, "a failed write logged")
    offset = server.api.confirmed_offset
    time.sleep(1.5)
    assert server.api.confirmed_offset == offset, "nothing more confirmed while the disk is full"
    control.unlink()
    wait_for(lambda: all_done(server, tmp_path, posts), 30, "the held scans stored once there is room")
    versions = stored(tmp_path)
    assert set(versions) == set(posts) and max(versions.values()) == 1
    assert "database or disk is full" in bot.log()


# -- d) a damaged model file -----------------------------------------------------------------------------


def _corrupt(model: Path) -> None:
    """Garbage with a manifest that matches it: the hash check passes, unpickling fails."""
    import hashlib

    model.write_bytes(b"not a pickle at all" * 100)
    manifest = json.loads(model.with_suffix(".manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    model.with_suffix(".manifest.json").write_text(json.dumps(manifest))


def _tampered(model: Path) -> None:
    with model.open("ab") as f:
        f.write(b"\0tampered")


def _other_sklearn(model: Path) -> None:
    manifest_file = model.with_suffix(".manifest.json")
    manifest = json.loads(manifest_file.read_text())
    manifest["sklearn_version"] = "0.24.2"
    manifest_file.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "damage, message",
    [
        (_corrupt, "could not be read"),
        (_tampered, "does not match its manifest"),
        (_other_sklearn, "scikit-learn 0.24.2"),
    ],
    ids=["corrupt", "tampered", "other-sklearn-version"],
)
def test_a_damaged_model_is_refused_and_the_running_one_kept(server, run_bot, tmp_path, model_path, damage, message):
    model = tmp_path / "models" / "model.joblib"
    model.parent.mkdir()
    shutil.copy(model_path, model)
    shutil.copy(model_path.with_suffix(".manifest.json"), model.with_suffix(".manifest.json"))
    version = json.loads(model.with_suffix(".manifest.json").read_text())["model_version"]
    bot = run_bot(MODEL_PATH=str(model), MODEL_CHECK_SECONDS="0.5")

    new_version_marker = model.with_suffix(".manifest.json")
    damage(model)
    manifest = json.loads(new_version_marker.read_text())
    manifest["model_version"] = "damaged-v2"  # so the watcher does not take it for the model it runs
    new_version_marker.write_text(json.dumps(manifest))
    # The file watcher refuses it …
    wait_for(lambda: "cannot be loaded; still using" in bot.log(), 15, "the watcher's refusal")
    assert message in bot.log().split("cannot be loaded; still using", 1)[1].splitlines()[0]
    # … and so does /reload, with the reason, to the moderator who asked.
    moderators = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Moderators"}
    server.api.push_update(U.command("/reload", moderators))
    reply = wait_for(
        lambda: [c for c in server.api.calls_to("sendMessage") if "Reload failed" in c.params["text"]],
        15,
        "the /reload refusal",
    )[0]
    assert f"still using {version}" in reply.params["text"] and message in reply.params["text"]
    # The bot still scans with the model it had.
    server.api.push_update(U.channel_post(77, promo(77)))
    wait_for(lambda: db_rows(tmp_path, "SELECT model_version FROM posts WHERE message_id = 77"), 15, "the scan")
    assert db_rows(tmp_path, "SELECT model_version FROM posts WHERE message_id = 77") == [(version,)]
    assert bot.proc.poll() is None


@pytest.mark.parametrize(
    "damage, message",
    [(_tampered, "does not match its manifest"), (_other_sklearn, "scikit-learn 0.24.2")],
    ids=["tampered", "other-sklearn"],
)
def test_a_damaged_model_stops_start_up_in_one_line(server, tmp_path, model_path, damage, message):
    from tests.test_app_e2e import run_until_exit

    model = tmp_path / "model.joblib"
    shutil.copy(model_path, model)
    shutil.copy(model_path.with_suffix(".manifest.json"), model.with_suffix(".manifest.json"))
    damage(model)
    result = run_until_exit(server, tmp_path, model)
    assert result.returncode != 0 and "Traceback" not in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert "MODEL_PATH" in last and message in last
