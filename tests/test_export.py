"""`compliance-bot export` and `stats`, and the database as Datasette shows it."""

from __future__ import annotations

import csv
import io
import json
import re

from click.testing import CliRunner

from bot.cli import EXPORT_STATUSES, cli
from bot.digest import build_digest
from bot.post import Post
from bot.storage import FLAG_STATUSES, Storage
from tests.fakes.classifier import FakeClassifier
from tests.test_alerts import post_link

CLF = FakeClassifier()
DAY = 86400.0
NOW = 1_720_000_000.0


def make_db(tmp_path):
    now = [NOW - 10 * DAY]
    storage = Storage.open(tmp_path / "bot.db", clock=lambda: now[0])

    def scan(chat, mid, text, title, username=None, date=None):
        storage.record_scan(Post(chat, mid, text, date=date, chat_type="channel", chat_title=title, chat_username=username),
                            CLF.predict(text), threshold=0.8, store_benign_text=False)

    scan(-1001111111111, 5, "Presale of $OLD ends", "Old Gems", date=NOW - 10 * DAY)
    now[0] = NOW - DAY
    scan(-1002222222222, 7, "VIP signals, join", "Signals", username="signals", date=NOW - DAY)
    scan(-1002222222222, 8, "airdrop claim now", "Signals", username="signals", date=NOW - DAY)
    scan(-1002222222222, 9, "nice weather", "Signals", username="signals", date=NOW - DAY)
    flags = {f["message_id"]: f for f in storage.all_flags()}
    storage.record_review(flags[8]["alert_id"], "false_positive", None, 111, "Mia Mod")
    storage.record_review(flags[7]["alert_id"], "relabel", "ico", 112, None)
    storage.close()
    return {"DATABASE_PATH": str(tmp_path / "bot.db"), "TELEGRAM_BOT_TOKEN": None, "MODERATOR_CHAT_ID": None}


def test_export_csv_has_the_columns_and_values(tmp_path):
    env = make_db(tmp_path)
    result = CliRunner().invoke(cli, ["export"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == "3 flags exported\n"
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == ["chat_id", "chat_title", "message_id", "link", "date", "label", "score", "status",
                              "reviewed_by", "reviewed_at", "reasons", "text"]
    first, relabelled, false_positive = table
    assert first | {} == {"chat_id": "-1001111111111", "chat_title": "Old Gems", "message_id": "5",
                          "link": "https://t.me/c/1111111111/5", "date": "2024-06-23T09:46:40+00:00", "label": "ico",
                          "score": "0.97", "status": "pending", "reviewed_by": "", "reviewed_at": "",
                          "reasons": "presale; pre", "text": "Presale of $OLD ends"}
    assert (relabelled["label"], relabelled["status"], relabelled["reviewed_by"]) == ("ico", "relabelled", "112")
    assert relabelled["link"] == "https://t.me/signals/7"
    assert (false_positive["status"], false_positive["reviewed_by"]) == ("false_positive", "Mia Mod (111)")
    assert false_positive["reviewed_at"] == "2024-07-02T09:46:40+00:00"


def test_export_jsonl_with_filters(tmp_path):
    env = make_db(tmp_path)
    runner = CliRunner()
    out = tmp_path / "flags.jsonl"
    result = runner.invoke(cli, ["export", "--format", "jsonl", "--status", "pending", "--status", "relabelled",
                                 "--since", "2024-07-01", "-o", str(out)], env=env)
    assert result.exit_code == 0 and "1 flags exported" in result.output
    [row] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert (row["message_id"], row["status"], row["reasons"]) == (7, "relabelled", ["vip signals", "vip"])
    only_ico = runner.invoke(cli, ["export", "--format", "jsonl", "--label", "ico", "-o", str(out)], env=env)
    assert only_ico.exit_code == 0 and "3 flags exported" in only_ico.output  # the false positive kept its label
    assert {json.loads(line)["message_id"] for line in out.read_text().splitlines()} == {5, 7, 8}
    bad = runner.invoke(cli, ["export", "--status", "maybe"], env=env)
    assert bad.exit_code == 2 and "'maybe' is not one of" in bad.output
    assert EXPORT_STATUSES == FLAG_STATUSES


def test_stats_shows_the_digest_figures(tmp_path):
    env = make_db(tmp_path)
    result = CliRunner().invoke(cli, ["stats", "--days", "3650"], env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Posts scanned: 4" in out
    assert "Flags: 3 (ICO / token sale 3)" in out  # the relabel made the VIP post an ICO flag
    assert "Flags by status: false_positive 1, pending 1, relabelled 1" in out
    assert "pending reviews (all time): 1" in out and "Signals: 2" in out and "Old Gems: 1" in out
    assert "https://t.me/signals/7" in out
    # The same figures as the digest of the same period.
    storage = Storage.open(tmp_path / "bot.db")
    digest, count = build_digest(storage, 0, storage.clock())
    plain = re.sub(r"<[^>]+>", "", digest)
    assert count == 3 and "Signals: 2" in plain and "Old Gems: 1" in plain and "pending reviews: 1" in plain


def test_a_missing_database_is_a_clear_error_and_is_not_created(tmp_path):
    env = {"DATABASE_PATH": str(tmp_path / "none.db")}
    for command in (["export"], ["stats"]):
        result = CliRunner().invoke(cli, command, env=env)
        assert result.exit_code == 1 and f"no database at {tmp_path / 'none.db'}" in result.output
    assert not (tmp_path / "none.db").exists()


def test_the_flag_details_view_reads_well_in_datasette(tmp_path):
    make_db(tmp_path)
    storage = Storage.open(tmp_path / "bot.db")
    view = list(storage.db.query("SELECT * FROM flag_details ORDER BY flag_id"))
    assert [v["link"] for v in view] == [post_link(v["chat_id"], v["chat_username"], v["message_id"]) for v in view]
    assert view[2]["reviewed_by"] == "Mia Mod" and view[2]["reviewed_at"] == "2024-07-02 09:46:40"
    assert view[0]["date"] == "2024-06-23 09:46:40" and view[0]["text"] == "Presale of $OLD ends"
    assert set(storage.db.table_names()) >= {"chats", "posts", "post_versions", "flags", "reviews", "alerts", "outbox"}
