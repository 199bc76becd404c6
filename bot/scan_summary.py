"""What a history scan found, file by file, and the table ``compliance-bot scan`` prints at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.desktop_export import ReadCounts
from bot.export_images import PictureCounts


@dataclass
class FileSummary:
    path: str
    counts: ReadCounts = field(default_factory=ReadCounts)
    stored: int = 0  # new posts and new versions
    duplicates: int = 0  # already stored with the same text
    flags: Counter = field(default_factory=Counter)
    error: str | None = None  # why reading stopped early, if it did
    pictures: PictureCounts = field(default_factory=PictureCounts)  # of an export made with media (OCR)


@dataclass
class ScanSummary:
    files: list[FileSummary] = field(default_factory=list)
    flags_by_chat: Counter = field(default_factory=Counter)
    top: list = field(default_factory=list)  # heap of (score, -flag id, n, flag description)
    flags_seen: int = 0  # n: an edit keeps its flag's id and may keep its score, and descriptions do not compare
    started: float = 0.0
    finished: float = 0.0
    database_error: str | None = None
    stopped: str | None = None  # Ctrl-C or a classification worker that died
    interrupted: bool = False

    @property
    def problems(self) -> int:
        return (
            sum(f.counts.skipped + (f.error is not None) for f in self.files)
            + (self.database_error is not None)
            + (self.stopped is not None)
        )


def summary_table(summary: ScanSummary) -> str:
    """The end-of-scan report: per file, totals, flags per label, top chats, the most confident flags."""
    labels = sorted({label for f in summary.files for label in f.flags})
    header = ["file", "messages", "posts", "new", "already stored", "no text", "skipped", *labels]
    rows = [
        [
            Path(f.path).name,
            f.counts.messages,
            f.counts.posts,
            f.stored,
            f.duplicates,
            f.counts.no_text + f.counts.service,
            f.counts.skipped + (f.error is not None),
            *[f.flags[label] for label in labels],
        ]
        for f in summary.files
    ]
    if len(rows) > 1:
        rows.append(["total", *[sum(r[i] for r in rows) for i in range(1, len(header))]])
    lines = [text_table(header, rows)]
    flagged = sum(sum(f.flags.values()) for f in summary.files)
    lines.append(
        f"\nFlags: {flagged}"
        + (
            " (" + ", ".join(f"{label} {sum(f.flags[label] for f in summary.files)}" for label in labels) + ")"
            if labels
            else ""
        )
    )
    pictures = [sum(getattr(f.pictures, n) for f in summary.files) for n in ("read", "missing", "refused")]
    if any(pictures):
        lines.append(
            f"Pictures: {pictures[0]} read, {pictures[1]} not in the export (exported without media), "
            f"{pictures[2]} not readable"
        )
    if summary.flags_by_chat:
        lines.append("\nTop chats by flags:")
        lines.append(text_table(["chat", "flags"], [[_cut(c, 50), n] for c, n in summary.flags_by_chat.most_common(5)]))
    if summary.top:
        lines.append("\nMost confident flags:")
        top = sorted(summary.top, reverse=True)
        lines.append(
            text_table(
                ["p", "label", "chat", "post", "text"],
                [[f"{s:.2f}", d["label"], _cut(d["chat"], 30), d["link"], _cut(d["text"], 60)] for s, *_, d in top],
            )
        )
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_table(header: list, rows: list[list]) -> str:
    """A plain-text table for the terminal: a header, a rule, columns padded, numbers right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out = []
    for n, row in enumerate(cells):
        out.append(
            "  ".join(
                c.rjust(w) if c.replace(".", "", 1).isdigit() else c.ljust(w) for c, w in zip(row, widths)
            ).rstrip()
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
