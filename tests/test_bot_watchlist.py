"""The stored watchlist (bot/watchlist.py), its CLI commands, what posts and flags record, and the live bot."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.post import Post
from bot.storage import Storage, migrations
from bot.watchlist import (
    import_platforms,
    load_watchlist,
    refresh,
    refresh_in_thread,
    remove_platform,
    stored_platforms,
)
from classifier import Platform
from classifier.verdict import Verdict
from classifier.watchlist import PlatformMatch
from tests.fakes import updates as U

FOOEX = Platform("Fooex", ("fooexchange.com",), ("福交易",), "warning list 2026-11")
LIST_CSV = (
    "name,domains,aliases,note\n"
    "Fooex,fooexchange.com,福交易,warning list 2026-11\n"
    "Nameless,,,\n"
    ",nothing.com,,\n"
    "Binance,binance.com binance.us,币安 幣安,\n"
)
LOOKALIKE_POST = "Lunch menu for Friday is up at f0oexchange-app.example, see you there"


@pytest.fixture
def storage(tmp_path):
    s = Storage.open(tmp_path / "bot.db")
    yield s
    s.close()


@pytest.fixture
def run(model_path, monkeypatch, tmp_path):
    """`compliance-bot` with the session's model and the database at tmp_path/bot.db, from tmp_path."""
    monkeypatch.setenv("MODEL_PATH", str(model_path))
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "bot.db"))
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


# -- the table --------------------------------------------------------------------------------


def test_a_new_database_starts_with_the_bundled_list(storage):
    names = [p.name for p in stored_platforms(storage)]
    assert len(names) == 22 and "Binance" in names and "Gate.io" in names
    assert next(p for p in stored_platforms(storage) if p.name == "OKX").aliases == ("okex", "欧易", "歐易")


def test_an_existing_database_upgrades_and_keeps_its_posts(tmp_path):
    import sqlite_utils

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m006_platform_watchlist")  # a database of the previous release
    old = Storage(db)
    old.record_scan(Post(-100, 1, "Presale live"), verdict("ico"), threshold=0.8, store_benign_text=False)
    old.close()
    storage = Storage.open(path)
    assert "m006_platform_watchlist" in [m.name for m in migrations.applied(storage.db)]
    assert len(stored_platforms(storage)) == 22
    assert [(r["message_id"], r["watchlist"]) for r in storage.db.query("SELECT * FROM posts")] == [(1, None)]
    assert storage.all_flags()[0]["watchlist"] is None
    storage.close()


def test_import_adds_updates_and_twice_changes_nothing(storage):
    changed = Platform("Binance", ("binance.com", "binance.us"), ("币安",), "updated")
    assert import_platforms(storage, [FOOEX, changed], "a.csv") == (1, 1, 0)
    before = list(storage.db.query("SELECT * FROM watchlist ORDER BY name"))
    assert import_platforms(storage, [FOOEX, changed], "a.csv") == (0, 0, 2)
    assert list(storage.db.query("SELECT * FROM watchlist ORDER BY name")) == before
    assert import_platforms(storage, [Platform("FOOEX", ("fooex.io",))], "b.csv") == (0, 1, 0)  # any case
    platforms = {p.name: p for p in stored_platforms(storage)}
    assert platforms["FOOEX"].domains == ("fooex.io",) and "Fooex" not in platforms
    assert platforms["Binance"].domains == ("binance.com", "binance.us")


def test_remove_all_leaves_the_list_empty_for_good(tmp_path):
    storage = Storage.open(tmp_path / "bot.db")
    for platform in stored_platforms(storage):
        assert remove_platform(storage, platform.name.upper()) == platform.name
    assert remove_platform(storage, "Binance") is None
    storage.close()
    storage = Storage.open(tmp_path / "bot.db")  # not seeded again
    assert stored_platforms(storage) == []
    assert load_watchlist(storage).match("b1nance-vip.example") == ()
    storage.close()


# -- what posts and flags record ------------------------------------------------------------------


def verdict(label, matches=(), score=0.97):
    scores = {"ico": 0.01, "trading_service": 0.01, "benign": 0.01} | {label: score}
    return Verdict(label, scores, [], "m", "en", tuple(matches))


LOOKALIKE = PlatformMatch("Binance", "look-alike", "b1nance-vip.example", "binance.com")
MENTION = PlatformMatch("OKX", "name", "okx", "okx")


def test_posts_and_flags_record_the_listed_platforms(storage):
    storage.record_scan(Post(-100, 1, "OKX news"), verdict("benign", [MENTION]), threshold=0.8, store_benign_text=False)
    flagged = storage.record_scan(
        Post(-100, 2, "b1nance-vip.example okx"),
        verdict("trading_service", [LOOKALIKE, MENTION], score=0.2),
        threshold=0.8,
        store_benign_text=False,
    )
    storage.record_scan(Post(-100, 3, "hello"), verdict("benign"), threshold=0.8, store_benign_text=False)
    posts = {r["message_id"]: r["watchlist"] for r in storage.db.query("SELECT * FROM posts")}
    assert posts == {1: '["OKX"]', 2: '["Binance", "OKX"]', 3: None}
    (flag,) = storage.all_flags()
    assert json.loads(flag["watchlist"]) == ["Binance", "OKX"]
    # A look-alike alerts at once although the model's score (0.2) is below the threshold.
    assert storage.alert(flagged.alert_id)["notify"] == 1
    # An edit that no longer names a platform clears what the post and its flag recorded.
    storage.record_scan(
        Post(-100, 2, "edited, nothing listed"), verdict("trading_service"), threshold=0.8, store_benign_text=False
    )
    assert storage.post(-100, 2)["watchlist"] is None and storage.all_flags()[0]["watchlist"] is None
    assert [r["platform"] for r in storage.db.query("SELECT * FROM platform_posts")] == ["OKX"]


def test_figures_count_posts_per_listed_platform(storage):
    from bot.digest import build_digest, stats_text

    for i, (label, matches) in enumerate(
        [("benign", [MENTION]), ("trading_service", [LOOKALIKE, MENTION]), ("benign", [MENTION]), ("benign", [])]
    ):
        storage.record_scan(Post(-100, i, f"post {i}"), verdict(label, matches), threshold=0.8, store_benign_text=False)
    figures = storage.period_figures(0, time.time() + 1)
    assert list(figures.by_platform) == [
        {"platform": "OKX", "posts": 3, "flagged": 1},
        {"platform": "Binance", "posts": 1, "flagged": 1},
    ]
    assert "Posts naming listed platforms: OKX 3 (1 flagged), Binance 1 (1 flagged)" in stats_text(storage, 1)
    text, _ = build_digest(storage, 0, time.time() + 1)
    assert "Posts naming listed platforms: OKX 3 (1 flagged), Binance 1 (1 flagged)" in text


def test_export_names_the_listed_platforms(storage):
    import csv
    import io

    from bot.flag_export import export_rows, write_export

    post = Post(-100, 2, "b1nance-vip.example")
    storage.record_scan(post, verdict("trading_service", [LOOKALIKE, MENTION]), threshold=0.8, store_benign_text=False)
    (row,) = list(export_rows(storage))
    assert row["watchlist"] == ["Binance", "OKX"]
    out = io.StringIO()
    write_export(export_rows(storage), out, "csv")
    (written,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert written["watchlist"] == "Binance; OKX"


# -- the CLI ----------------------------------------------------------------------------------


def test_watchlist_import_list_remove(run, tmp_path):
    (tmp_path / "list.csv").write_text(LIST_CSV, encoding="utf-8")
    first = run("watchlist", "import", "list.csv")
    assert first.exit_code == 1  # two rows skipped
    assert "2 added, 1 changed, 0 unchanged, 1 skipped; 24 platforms listed" in first.output
    assert "list.csv: line 4: name is missing or empty" in first.output
    again = run("watchlist", "import", "list.csv")
    assert "0 added, 0 changed, 3 unchanged, 1 skipped; 24 platforms listed" in again.output
    listed = run("watchlist", "list")
    assert "Fooex: fooexchange.com · aliases 福交易 · warning list 2026-11" in listed.output
    assert "Binance: binance.com binance.us · aliases 币安 幣安" in listed.output
    # What list writes as JSONL imports again, changing nothing.
    (tmp_path / "out.jsonl").write_text(run("watchlist", "list", "--format", "jsonl").output, encoding="utf-8")
    assert "0 added, 0 changed, 24 unchanged, 0 skipped" in run("watchlist", "import", "out.jsonl").output
    assert run("watchlist", "remove", "fooex").output.strip() == "Removed Fooex."
    missing = run("watchlist", "remove", "fooex")
    assert missing.exit_code == 1 and "'fooex' is not listed" in missing.output
    assert "Fooex" not in run("watchlist", "list").output


def test_import_of_an_unreadable_file_is_one_line_and_changes_nothing(run, tmp_path):
    (tmp_path / "list.csv").write_bytes(b"name,domains\n\xff\xfe,x.com\n")
    result = run("watchlist", "import", "list.csv")
    assert result.exit_code == 1 and "cannot read list.csv" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "bot.db").exists()


def test_import_into_a_locked_database_is_one_line_and_imports_nothing(run, tmp_path):
    (tmp_path / "list.csv").write_text(LIST_CSV, encoding="utf-8")
    Storage.open(tmp_path / "bot.db").close()
    holder = sqlite3.connect(tmp_path / "bot.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run("watchlist", "import", "list.csv")
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 1 and "database error, nothing imported" in result.output
    assert "Traceback" not in result.output
    assert "Fooex" not in run("watchlist", "list").output


def test_check_uses_the_databases_list(run, tmp_path):
    assert "look-alike" not in run("check", LOOKALIKE_POST).output  # Fooex is not on the bundled list
    (tmp_path / "list.csv").write_text(LIST_CSV, encoding="utf-8")
    run("watchlist", "import", "list.csv")
    result = run("check", LOOKALIKE_POST)
    assert result.output.startswith("trading_service (")
    assert "watchlist: look-alike of fooexchange.com: f0oexchange-app.example" in result.output


def test_scan_uses_the_list_of_the_database_it_scans_into(run, tmp_path):
    (tmp_path / "list.csv").write_text(LIST_CSV, encoding="utf-8")
    run("watchlist", "import", "list.csv", "--db", "other.db")
    posts = [
        {"chat_id": -1001111111111, "message_id": 1, "text": LOOKALIKE_POST},
        {"chat_id": -1001111111111, "message_id": 2, "text": "Binance and 火币 were fined today, regulators said"},
    ]
    (tmp_path / "posts.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in posts), "utf-8")
    result = run("scan", "--workers", "1", "--db", "other.db", "posts.jsonl")
    assert result.exit_code == 0, result.output
    storage = Storage.open(tmp_path / "other.db")
    rows = {r["message_id"]: (r["label"], r["watchlist"]) for r in storage.db.query("SELECT * FROM posts")}
    assert rows == {1: ("trading_service", '["Fooex"]'), 2: ("benign", '["Binance", "Huobi"]')}
    assert [a["notify"] for a in storage.db.query("SELECT * FROM alerts")] == [0]  # history never alerts at once
    storage.close()


# -- the live bot -------------------------------------------------------------------------------


async def test_stats_counts_posts_per_listed_platform(bot_factory):
    harness = await bot_factory()
    for i, matches in enumerate([[MENTION], [LOOKALIKE, MENTION]]):
        harness.services.store_scan(Post(-100, i, f"post {i}"), verdict("trading_service", matches))
    await harness.send(U.command("/stats", {"id": 111, "type": "private", "first_name": "Mia"}))
    (reply,) = [c.params["text"] for c in harness.api.calls_to("sendMessage")]
    assert "Posts naming listed platforms: OKX 2 (2 flagged), Binance 1 (1 flagged)" in reply


async def test_refresh_follows_the_table_and_a_swapped_classifier(bot_factory):
    harness = await bot_factory()
    svc = harness.services
    assert svc.classifier.watchlist is svc.watchlist and len(svc.watchlist.platforms) == 22
    assert refresh(svc) is False  # nothing changed
    import_platforms(svc.storage, [FOOEX], "x.csv")
    assert await refresh_in_thread(svc) is True and len(svc.classifier.watchlist.platforms) == 23
    from tests.fakes.classifier import FakeClassifier

    svc.classifier = FakeClassifier()  # a retrained model swapped in
    assert await refresh_in_thread(svc) is False and svc.classifier.watchlist is svc.watchlist
    remove_platform(svc.storage, "Fooex")
    assert refresh(svc) is True and len(svc.classifier.watchlist.platforms) == 22


def cli_line() -> list[str]:
    return [sys.executable, "-c", "from bot.cli import cli; cli()"]


@pytest.mark.slow
def test_the_running_bot_uses_an_import_without_a_restart(server, run_bot, tmp_path):
    from tests.test_app_e2e import alerts_sent, db_rows, wait_for

    bot = run_bot(MODEL_CHECK_SECONDS="0.3")
    server.api.push_update(U.channel_post(1, LOOKALIKE_POST))
    wait_for(lambda: db_rows(tmp_path, "SELECT label FROM posts WHERE message_id = 1"), what="the first post")
    assert db_rows(tmp_path, "SELECT label, watchlist FROM posts WHERE message_id = 1") == [("benign", None)]

    (tmp_path / "list.csv").write_text(LIST_CSV, encoding="utf-8")
    imported = subprocess.run(
        [*cli_line(), "watchlist", "import", "list.csv"], cwd=tmp_path, env=bot.env, capture_output=True, text=True
    )
    assert "24 platforms listed" in imported.stdout, imported.stderr
    wait_for(lambda: "watchlist changed: 24 listed platforms" in bot.log(), what="the bot to read the list")

    server.api.push_update(U.channel_post(2, LOOKALIKE_POST.replace("Friday", "Monday")))
    alert = wait_for(lambda: alerts_sent(server), what="the alert")[0]
    assert "look-alike of fooexchange.com: f0oexchange-app.example" in alert.params["text"]
    assert db_rows(tmp_path, "SELECT label, watchlist FROM posts WHERE message_id = 2") == [
        ("trading_service", '["Fooex"]')
    ]
    # /check in private uses the same list.
    private = {"id": 111, "type": "private", "first_name": "Mia"}
    server.api.push_update(U.command(f"/check {LOOKALIKE_POST}", private, message_id=5))
    reply = wait_for(
        lambda: [c for c in server.api.calls_to("sendMessage") if c.params["chat_id"] == 111], what="the reply"
    )[0]
    assert "look-alike of fooexchange.com" in reply.params["text"]
