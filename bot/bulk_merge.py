"""``bulk-scan --into-db``: the flags of a bulk scan's Parquet dataset merged into the bot's database for
the moderators to review.

The flags go through :meth:`bot.storage.Storage.record_scans`, as a history scan's do: a post already
stored with the same text is recognised and not stored again, so merging the same output twice (or an
output that overlaps an earlier scan) stores each flag once. Like flags from history, they do not alert
one by one: they wait in the review queue and the digest. A flag whose chat has no Bot API id (an archive
that names channels only) cannot be stored under a chat the bot knows, and is counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

from bot.bulk_scan import output_schema
from bot.history_scan import NEVER_ALERT
from bot.post import Post
from classifier import BENIGN, Reason, Verdict

MERGE_BATCH = 1000


@dataclass
class MergeCounts:
    stored: int = 0  # flags new to the database (or new texts of posts it had)
    already: int = 0  # already stored with the same text
    no_chat_id: int = 0  # flags of chats named only by a channel name


def merge_flags(dataset: Path, storage) -> MergeCounts:
    """Store the flags of the dataset under ``dataset`` (flags/ or verdicts/) in ``storage``, a batch at a time."""
    import pyarrow.dataset as ds

    counts = MergeCounts()
    # The schema given, so that a dataset with no part file (every input skipped) is merely empty.
    table = ds.dataset(dataset, format="parquet", schema=output_schema())
    for batch in table.to_batches(filter=ds.field("label") != BENIGN, batch_size=MERGE_BATCH):
        scans = []
        for row in batch.to_pylist():
            if row["chat_id"] is None:
                counts.no_chat_id += 1
                continue
            scans.append((_post(row), _verdict(row)))
        if not scans:
            continue
        for outcome in storage.record_scans(scans, threshold=NEVER_ALERT, store_benign_text=False):
            if outcome.duplicate:
                counts.already += 1
            else:
                counts.stored += 1
    return counts


def _post(row: dict) -> Post:
    date = row["date"]
    return Post(
        chat_id=row["chat_id"],
        message_id=row["message_id"],
        text=row["text"],
        date=None if date is None else date.replace(tzinfo=date.tzinfo or timezone.utc).timestamp(),
        chat_title=row["chat_title"],
    )


def _verdict(row: dict) -> Verdict:
    return Verdict(
        label=row["label"],
        scores=dict(row["scores"]),
        reasons=[Reason(r["kind"], r["feature"], r["weight"]) for r in row["reasons"] or []],
        model_version=row["model_version"],
        language=row["language"],
    )
