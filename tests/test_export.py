"""`compliance-bot export` and `stats`, and the database as Datasette shows it."""

from __future__ import annotations

import csv
import io
import json
import re

from click.testing import CliRunner

from bot.cli import cli
from bot.digest import build_digest
from bot.flag_export import export_rows, write_export
from bot.storage import Storage
from tests.test_alerts import post_link
from tests.test_flag_export import FORMULAS, UNRENDERABLE_DATES, hostile_db, make_db, strict_json, unrenderable_db


def test_export_csv_has_the_columns_and_values(tmp_path):
    """The values themselves are tested in tests/test_flag_export.py; the command writes exactly those."""
    env = make_db(tmp_path)
    result = CliRunner().invoke(cli, ["export"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == "3 flags exported\n"
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == [
        "chat_id",
        "chat_title",
        "message_id",
        "link",
        "date",
        "label",
        "score",
        "status",
        "reviewed_by",
        "reviewed_at",
        "reasons",
        "text_from_image",
        "text",
        "watchlist",
        "sender",
        "actions",
    ]
    assert [(r["message_id"], r["status"], r["reviewed_by"]) for r in table] == [
        ("5", "pending", ""),
        ("7", "relabelled", "112"),
        ("8", "false_positive", "Mia Mod (111)"),
    ]
    to_file = CliRunner().invoke(cli, ["export", "-o", str(tmp_path / "flags.csv")], env=env)
    assert to_file.exit_code == 0, to_file.output
    out = io.StringIO()
    write_export(export_rows(Storage.open(tmp_path / "bot.db")), out, "csv")
    assert (tmp_path / "flags.csv").read_bytes() == out.getvalue().encode("utf-8")


def test_export_jsonl_with_filters(tmp_path):
    env = make_db(tmp_path)
    runner = CliRunner()
    out = tmp_path / "flags.jsonl"
    result = runner.invoke(
        cli,
        [
            "export",
            "--format",
            "jsonl",
            "--status",
            "pending",
            "--status",
            "relabelled",
            "--since",
            "2024-07-01",
            "-o",
            str(out),
        ],
        env=env,
    )
    assert result.exit_code == 0 and "1 flags exported" in result.output
    [row] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert (row["message_id"], row["status"], row["reasons"]) == (7, "relabelled", ["vip signals", "vip"])
    only_ico = runner.invoke(cli, ["export", "--format", "jsonl", "--label", "ico", "-o", str(out)], env=env)
    assert only_ico.exit_code == 0 and "3 flags exported" in only_ico.output  # the false positive kept its label
    assert {json.loads(line)["message_id"] for line in out.read_text().splitlines()} == {5, 7, 8}
    bad = runner.invoke(cli, ["export", "--status", "maybe"], env=env)
    assert bad.exit_code == 2 and "'maybe' is not one of" in bad.output


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


# -- finding 1: one row the exporter cannot render stops nothing ----------------------------------------------


def test_export_writes_every_row_when_a_stored_date_or_score_cannot_be_rendered(tmp_path):
    unrenderable_db(tmp_path / "bot.db").close()
    env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "TELEGRAM_BOT_TOKEN": None, "MODERATOR_CHAT_ID": None}
    result = CliRunner().invoke(cli, ["export"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == "10 flags exported\n"
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["message_id"]) for r in table] == list(range(1, 11))
    assert [r["date"] for r in table if int(r["message_id"]) in UNRENDERABLE_DATES] == [""] * len(UNRENDERABLE_DATES)
    assert (table[0]["reviewed_at"], table[7]["score"], table[8]["score"]) == ("", "", "")
    jsonl = CliRunner().invoke(cli, ["export", "--format", "jsonl", "-o", str(tmp_path / "flags.jsonl")], env=env)
    assert jsonl.exit_code == 0 and jsonl.stderr == "10 flags exported\n", jsonl.output
    rows = [strict_json(line) for line in (tmp_path / "flags.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["message_id"] for r in rows] == list(range(1, 11))
    assert [r["date"] for r in rows if r["message_id"] in UNRENDERABLE_DATES] == [None] * len(UNRENDERABLE_DATES)
    assert (rows[0]["reviewed_at"], rows[7]["score"], rows[8]["score"], rows[9]["reasons"]) == (None, None, None, [])
    # --since compares the stored values as SQLite orders them (a text after every number): no reason to stop either.
    since = CliRunner().invoke(cli, ["export", "--since", "2024-07-03T09:46:39"], env=env)
    assert since.exit_code == 0, since.output
    assert [r["message_id"] for r in csv.DictReader(io.StringIO(since.stdout))] == ["1", "2", "3", "5", "7"]


# -- finding 5: CSV formula injection ----------------------------------------------------------------------------


def test_export_csv_neutralises_formulas_and_jsonl_keeps_them(tmp_path):
    hostile_db(tmp_path / "bot.db").close()
    env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "TELEGRAM_BOT_TOKEN": None, "MODERATOR_CHAT_ID": None}
    result = CliRunner().invoke(cli, ["export"], env=env)
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["text"] for r in table] == [f"'{f} presale" for f in FORMULAS]
    assert [r["chat_title"] for r in table] == [f"'{f}" for f in FORMULAS]
    assert [r["reviewed_by"] for r in table] == [f"'{f} (111)" for f in FORMULAS]
    assert table[0]["chat_id"] == "-1001111111112"  # a number stays a number
    jsonl = CliRunner().invoke(cli, ["export", "--format", "jsonl"], env=env)
    assert jsonl.exit_code == 0, jsonl.output
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["text"] for r in rows] == [f"{f} presale" for f in FORMULAS]
    assert [r["chat_title"] for r in rows] == FORMULAS


# -- finding 6: stats --days is bounded ----------------------------------------------------------------------------


def test_stats_days_out_of_range_is_a_clear_error_not_a_traceback(tmp_path):
    env = make_db(tmp_path)
    for days in ("1e308", "inf", "-inf", "nan", "NaN", "1000000", "3650.01", "0", "-1", "1e-400"):
        result = CliRunner().invoke(cli, ["stats", f"--days={days}"], env=env)
        assert result.exit_code == 2, (days, result.output)
        assert "Invalid value for '--days'" in result.output and "0<x<=3650" in result.output, (days, result.output)
        assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, days
    for days in ("3650", "0.5", "1e-3"):
        result = CliRunner().invoke(cli, ["stats", "--days", days], env=env)
        assert result.exit_code == 0, (days, result.output)
    assert "at most 3650 days" in " ".join(CliRunner().invoke(cli, ["stats", "--help"]).output.split())


def test_stats_has_the_same_bound_as_the_bot(tmp_path):
    from bot.cli import MAX_STATS_DAYS
    from bot.commands import MAX_STATS_DAYS as BOT_MAX_STATS_DAYS

    assert MAX_STATS_DAYS == BOT_MAX_STATS_DAYS == 3650
    # The oldest period the bound allows renders.
    env = make_db(tmp_path)
    result = CliRunner().invoke(cli, ["stats", "--days", str(MAX_STATS_DAYS)], env=env)
    assert result.exit_code == 0 and "Last 3650 days" in result.output, result.output
