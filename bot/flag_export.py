"""The flags as rows for analysts: ``compliance-bot export`` and the bot's /export write the same CSV or JSONL."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import IO

from bot.action_log import action_text, flag_actions
from bot.actors import post_actors, sender_text
from bot.storage import Storage

EXPORT_COLUMNS = [
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
    # Issue 15: who made the post, and what moderators and the bot did about it (bot/action_log.py).
    "sender",
    "actions",
]

# An export is written from whatever the database holds, and one row must never stop it: a database of an
# older release, or one edited by hand, may hold a post date of 1e300, year 10000 or text, a score of
# infinity, reasons that are not JSON. Such a value becomes an empty cell (null in JSONL) and the rest of
# the row, and every row after it, is written.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The times a date can show, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, in epoch seconds.
_FIRST_SECOND = (datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()
_LAST_SECOND = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc) - _EPOCH).total_seconds()


def _number(value) -> bool:
    """A finite int or float (SQLite may hand back text, bytes or infinity from a REAL column)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _iso(ts) -> str | None:
    """A stored UTC epoch time as ISO 8601, or None when there is none or it is no time a date can show."""
    if not _number(ts) or not _FIRST_SECOND <= ts <= _LAST_SECOND:
        return None
    return (_EPOCH + timedelta(seconds=ts)).isoformat(timespec="seconds")


def _score(value) -> float | None:
    return round(value, 4) if _number(value) else None


def _reason_features(stored) -> list[str]:
    """The features of a flag's stored reasons (a JSON list of {"kind", "feature", "weight"}); none when
    what is stored is not that."""
    try:
        reasons = json.loads(stored or "[]")
    except (TypeError, ValueError, RecursionError):
        return []
    if not isinstance(reasons, list):
        return []
    return [r["feature"] for r in reasons if isinstance(r, dict) and isinstance(r.get("feature"), str)]


def _names(stored) -> list[str]:
    """The listed platforms of a flag (a stored JSON list of names); none when what is stored is not that."""
    try:
        names = json.loads(stored or "[]")
    except (TypeError, ValueError, RecursionError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _plain(value):
    """A stored value as export cells take it: text, a finite number or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):  # a BLOB where text belongs
        return value.decode("utf-8", errors="replace")
    return value


def export_rows(storage: Storage, *, statuses=(), labels=(), since: float | None = None) -> Iterable[dict]:
    """Flags as export rows with the issue's columns, oldest first."""
    for f in storage.iter_flag_details(statuses, labels, since):
        f = {key: _plain(value) for key, value in f.items()}
        reviewer = None
        if f["reviewer_id"] is not None:
            reviewer = f"{f['reviewer_name']} ({f['reviewer_id']})" if f["reviewer_name"] else str(f["reviewer_id"])
        yield {
            "chat_id": f["chat_id"],
            "chat_title": f["chat_title"],
            "message_id": f["message_id"],
            "link": f["link"],
            "date": _iso(f["date"]),
            "label": f["label"],
            "score": _score(f["score"]),
            "status": f["status"],
            "reviewed_by": reviewer,
            "reviewed_at": _iso(f["reviewed_at"]),
            "reasons": _reason_features(f["reasons"]),
            "text_from_image": bool(f.get("text_from_image")),
            "text": f["text"],
            "watchlist": _names(f.get("watchlist")),
            "sender": sender_text(post_actors(storage.db, f["chat_id"], f["message_id"])),
            "actions": "; ".join(action_text(a, _iso(a["at"])) for a in flag_actions(storage, f["id"])) or None,
        }


# OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection): a spreadsheet reads a
# cell that begins with one of these as a formula (=HYPERLINK(…) sends data away, =cmd|… runs a program).
# Line feed joined the list in 2025 (OWASP/www-community#1116).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_cell(value):
    """A CSV cell a spreadsheet shows as text, as OWASP recommends: a text that begins like a formula gets a
    leading single quote, which spreadsheets take as "this is text". Numbers stay numbers: -1001234567890
    is a chat id, not a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def write_export(rows: Iterable[dict], out: IO[str], fmt: str) -> int:
    """Write rows as CSV (reasons joined with "; ") or JSONL; returns how many.

    CSV is for people, who open it in a spreadsheet: no text cell begins like a formula (spreadsheet_cell),
    and every text cell is quoted, so that a separator inside a text (a ";" where a spreadsheet splits on
    ";") cannot start a new cell. JSONL is for programs: every value verbatim."""
    n = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, quoting=csv.QUOTE_NONNUMERIC)
        writer.writeheader()
        for row in rows:
            joined = {"reasons": "; ".join(row["reasons"]), "watchlist": "; ".join(row["watchlist"])}
            writer.writerow({k: spreadsheet_cell(v) for k, v in (row | joined).items()})
            n += 1
    else:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
