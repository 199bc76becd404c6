"""The flags as rows for analysts: ``compliance-bot export`` and the bot's /export write the same CSV or JSONL."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import IO

from bot.storage import Storage

EXPORT_COLUMNS = ["chat_id", "chat_title", "message_id", "link", "date", "label", "score", "status",
                  "reviewed_by", "reviewed_at", "reasons", "text"]


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts is not None else None


def export_rows(storage: Storage, *, statuses=(), labels=(), since: float | None = None) -> Iterable[dict]:
    """Flags as export rows with the issue's columns, oldest first."""
    for f in storage.iter_flag_details(statuses, labels, since):
        reviewer = None
        if f["reviewer_id"] is not None:
            reviewer = f"{f['reviewer_name']} ({f['reviewer_id']})" if f["reviewer_name"] else str(f["reviewer_id"])
        yield {
            "chat_id": f["chat_id"], "chat_title": f["chat_title"], "message_id": f["message_id"],
            "link": f["link"],
            "date": _iso(f["date"]), "label": f["label"], "score": round(f["score"], 4), "status": f["status"],
            "reviewed_by": reviewer, "reviewed_at": _iso(f["reviewed_at"]),
            "reasons": [r["feature"] for r in json.loads(f["reasons"] or "[]")], "text": f["text"],
        }


def write_export(rows: Iterable[dict], out: IO[str], fmt: str) -> int:
    """Write rows as CSV (reasons joined with "; ") or JSONL; returns how many."""
    n = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row | {"reasons": "; ".join(row["reasons"])})
            n += 1
    else:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
