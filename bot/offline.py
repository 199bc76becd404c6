"""The offline tools behind ``compliance-bot scan``, ``export`` and ``stats``.

Scanned posts go through the same storage path as live ones (:meth:`Storage.record_scan`), so a post
seen in an export and live is one row and an edit is a new version. Flags found in history never alert
one by one (a year of a channel would flood the moderators); they wait in the review queue (/pending)
and in the digest, and ``scan --alert`` sends a digest of them at once.
"""

from __future__ import annotations

import csv
import heapq
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from bot.alerts import post_link
from bot.exports import ExportError, ReadCounts, position_of, read_posts
from bot.storage import Post, Storage

BATCH = 1000  # posts classified together and stored in one transaction
TOP_FLAGS = 5
NEVER_ALERT = float("inf")  # the alert threshold for history: flags go to the queue and the digest


@dataclass
class FileSummary:
    path: str
    counts: ReadCounts = field(default_factory=ReadCounts)
    stored: int = 0  # new posts and new versions
    duplicates: int = 0  # already stored with the same text
    flags: Counter = field(default_factory=Counter)
    error: str | None = None  # why reading stopped early, if it did


@dataclass
class ScanSummary:
    files: list[FileSummary] = field(default_factory=list)
    flags_by_chat: Counter = field(default_factory=Counter)
    top: list = field(default_factory=list)  # heap of (score, n, flag description)
    started: float = 0.0
    finished: float = 0.0
    database_error: str | None = None

    @property
    def problems(self) -> int:
        return sum(f.counts.skipped + (f.error is not None) for f in self.files) + (self.database_error is not None)


class _Chats:
    """Chat usernames already known from live updates: an export has none, and must not erase them."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.known: dict[int, str | None] = {}

    def username(self, chat_id: int) -> str | None:
        if chat_id not in self.known:
            row = self.storage.chat(chat_id)
            self.known[chat_id] = row["username"] if row else None
        return self.known[chat_id]


def scan_files(paths: Iterable[Path], storage: Storage, classifier, *, report: Callable[[str], None],
               store_benign_text: bool = False, progress: Callable | None = None) -> ScanSummary:
    """Scan every file, storing posts and flags; a bad file is reported and the next one is read.

    ``progress(path, size)`` returns a context manager with ``update(n_bytes)`` (click's progress bar).
    A database error stops the scan (the batches stored so far stay); rerunning continues, since posts
    already stored are recognised as duplicates.
    """
    summary = ScanSummary(started=storage.clock())
    chats = _Chats(storage)
    for path in map(Path, paths):
        file_summary = FileSummary(str(path))
        summary.files.append(file_summary)
        try:
            handle = open(path, "rb")
        except OSError as exc:
            file_summary.error = f"{path}: cannot open ({exc.strerror or exc})"
            report(file_summary.error)
            continue
        with handle:
            size = path.stat().st_size if path.is_file() else 0
            bar = progress(path, size) if progress else None
            where = position_of(handle)
            done = 0
            batch: list[Post] = []
            try:
                with bar if bar is not None else _nothing():
                    for post in read_posts(path, handle, report, file_summary.counts):
                        batch.append(post)
                        if len(batch) >= BATCH:
                            _store(batch, storage, classifier, chats, file_summary, summary, store_benign_text)
                            batch = []
                            if bar is not None:
                                now = where()
                                bar.update(max(0, now - done))
                                done = now
                    _store(batch, storage, classifier, chats, file_summary, summary, store_benign_text)
                    if bar is not None:
                        bar.update(max(0, size - done))
            except ExportError as exc:
                _store(batch, storage, classifier, chats, file_summary, summary, store_benign_text)
                file_summary.error = str(exc)
                report(file_summary.error)
            except sqlite3.Error as exc:
                summary.database_error = (f"database error while storing {path} ({exc}); the batches stored before it "
                                          "are kept; run the scan again to continue (stored posts are not stored twice)")
                report(summary.database_error)
                break
    summary.finished = storage.clock()
    return summary


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _store(batch: list[Post], storage: Storage, classifier, chats: _Chats, file_summary: FileSummary,
           summary: ScanSummary, store_benign_text: bool) -> None:
    if not batch:
        return
    verdicts = classifier.predict_many([p.text for p in batch])
    with storage.db.atomic():
        for post, verdict in zip(batch, verdicts):
            if post.chat_username is None:
                username = chats.username(post.chat_id)
                if username:
                    post = Post(post.chat_id, post.message_id, post.text, post.date, post.chat_type, post.chat_title,
                                username)
            outcome = storage.record_scan(post, verdict, threshold=NEVER_ALERT, store_benign_text=store_benign_text)
            if outcome.duplicate:
                file_summary.duplicates += 1
                continue
            file_summary.stored += 1
            if outcome.flag_id is not None and not outcome.withdrawn:
                file_summary.flags[verdict.label] += 1
                summary.flags_by_chat[post.chat_title or str(post.chat_id)] += 1
                item = (verdict.score, -outcome.flag_id, {"label": verdict.label, "score": verdict.score,
                                                          "chat": post.chat_title or str(post.chat_id),
                                                          "link": post_link(post.chat_id, post.chat_username, post.message_id)
                                                          or f"chat {post.chat_id} message {post.message_id}",
                                                          "text": post.text})
                if len(summary.top) < TOP_FLAGS:
                    heapq.heappush(summary.top, item)
                else:
                    heapq.heappushpop(summary.top, item)
    batch.clear()


def summary_table(summary: ScanSummary) -> str:
    """The end-of-scan report: per file, totals, flags per label, top chats, the most confident flags."""
    labels = sorted({label for f in summary.files for label in f.flags})
    header = ["file", "messages", "posts", "new", "already stored", "no text", "skipped", *labels]
    rows = [[Path(f.path).name, f.counts.messages, f.counts.posts, f.stored, f.duplicates,
             f.counts.no_text + f.counts.service, f.counts.skipped + (f.error is not None),
             *[f.flags[label] for label in labels]] for f in summary.files]
    if len(rows) > 1:
        rows.append(["total", *[sum(r[i] for r in rows) for i in range(1, len(header))]])
    lines = [_table(header, rows)]
    flagged = sum(sum(f.flags.values()) for f in summary.files)
    lines.append(f"\nFlags: {flagged}" + (" (" + ", ".join(f"{label} {sum(f.flags[label] for f in summary.files)}"
                                                            for label in labels) + ")" if labels else ""))
    if summary.flags_by_chat:
        lines.append("\nTop chats by flags:")
        lines.append(_table(["chat", "flags"], [[_cut(c, 50), n] for c, n in summary.flags_by_chat.most_common(5)]))
    if summary.top:
        lines.append("\nMost confident flags:")
        top = sorted(summary.top, reverse=True)
        lines.append(_table(["p", "label", "chat", "post", "text"],
                            [[f"{s:.2f}", d["label"], _cut(d["chat"], 30), d["link"], _cut(d["text"], 60)] for s, _, d in top]))
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(header: list, rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c.rjust(w) if c.replace(".", "", 1).isdigit() else c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- export ---------------------------------------------------------------------------------------------

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
            "link": post_link(f["chat_id"], f["chat_username"], f["message_id"]),
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
