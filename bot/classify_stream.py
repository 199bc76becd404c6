"""Classifying a stream of posts for ``compliance-bot classify``: JSONL or plain lines in, JSONL out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from classifier import parse_post_line, safe_text

BATCH_SIZE = 2000


@dataclass
class BatchSummary:
    read: int = 0
    classified: int = 0
    skipped: int = 0
    flagged: int = 0


def read_posts(lines: Iterable[str], report) -> Iterator[dict]:
    """Post objects from JSONL (when the first non-blank line is a JSON object) or from plain lines, one
    post a line, a byte-order mark before the first ignored. A line that cannot be used is reported with its
    number and skipped."""
    mode = None
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if number == 1 and line.startswith("\ufeff"):  # a byte-order mark is not part of the first post
            line = line[1:]
        if not line.strip():
            continue
        if mode is None:
            mode = "jsonl" if line.lstrip().startswith("{") else "text"
        if mode == "text":
            yield {"text": safe_text(line)}
            continue
        try:
            yield parse_post_line(line, require_label=False)
        except ValueError as exc:
            report(f"line {number}: {exc}; skipped")


def _batches(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def classify_stream(model, lines: Iterable[str], out: IO[str], report, *, reasons: int = 5) -> BatchSummary:
    """Classify every usable line and write one JSON object per post, its other fields kept."""
    summary = BatchSummary()

    def counting_report(message: str) -> None:
        summary.skipped += 1
        report(message)

    for batch in _batches(read_posts(lines, counting_report), BATCH_SIZE):
        verdicts = model.predict_many([post["text"] for post in batch], reasons=reasons)
        for post, verdict in zip(batch, verdicts):
            result = verdict.to_dict()
            post.update(
                label=result["label"],
                scores=result["scores"],
                reasons=[str(r) for r in verdict.reasons],
                model_version=result["model_version"],
            )
            # Fields other than "text" may still hold lone surrogates from the input.
            out.write(safe_text(json.dumps(post, ensure_ascii=False)) + "\n")
            summary.flagged += verdict.is_promotion
        summary.classified += len(batch)
    summary.read = summary.classified + summary.skipped
    return summary
