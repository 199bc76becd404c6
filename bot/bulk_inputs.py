"""What ``compliance-bot bulk-scan`` reads: INPUT paths, directories and globs expanded into partitions, and
the posts of one partition.

A partition is a piece of one file that one Dask task reads, classifies and writes out on its own: a
Telegram Desktop export whole (a JSON stream cannot be entered in the middle), a range of bytes of a JSONL
file (the lines that start in it), a run of row groups of a Parquet file. Partitions are worked out from
file sizes and Parquet footers only, so the client reads no posts.

JSONL lines and Parquet rows have ``text`` and name their post with ``chat_id`` (a Bot API id) or
``channel`` (a name, as archives such as TGDataset give it), ``message_id`` or ``id``, and optionally
``date`` (Unix seconds or ISO 8601), ``chat_title``, ``chat_username``, ``chat_type``. Text, ids and dates
are checked as every other source checks them (:mod:`bot.post`), and a post with a Bot API chat id is the
same :class:`bot.post.Post` that ``compliance-bot scan`` stores.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timezone

from bot.desktop_export import ExportError, ReadCounts, read_export
from bot.jsonl_posts import parse_line
from bot.post import Post, chat_id_problem, message_id_problem, post_date, scan_text
from classifier import safe_text

JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXPORT_SUFFIXES = (".json",)
# A JSONL partition: about 200,000 posts, a few minutes of one worker; small enough to recompute when a
# worker is lost, large enough that scheduling costs nothing beside it.
JSONL_PARTITION_BYTES = 64 << 20
PARQUET_PARTITION_ROWS = 200_000


@dataclass(frozen=True)
class Partition:
    """One task's share of the input: ``path`` read as ``kind`` from ``start`` to ``stop`` (bytes of a JSONL
    file, row groups of a Parquet file; a whole export)."""

    path: str
    kind: str  # "export", "jsonl" or "parquet"
    start: int = 0
    stop: int | None = None

    @property
    def key(self) -> str:
        """A name that is the same whenever the same piece is scanned: its output file is named by it, so a
        partition computed twice (its worker was lost) replaces its own file rather than adding one."""
        ident = f"{os.path.abspath(self.path)}\0{self.kind}\0{self.start}\0{self.stop}"
        return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:20]

    @property
    def name(self) -> str:
        """The partition as people read it: the file, and the part of it when it is split."""
        if self.kind == "jsonl" and (self.start or self.stop is not None):
            return f"{self.path} (bytes {self.start}-{self.stop})"
        if self.kind == "parquet" and (self.start or self.stop is not None):
            return f"{self.path} (row groups {self.start}-{self.stop})"
        return self.path


@dataclass(frozen=True)
class ArchivePost:
    """A post of an archive: ``chat`` names its chat (the Bot API id as text, or the channel's name);
    ``post`` is what the bot's database stores, when the chat has a Bot API id."""

    chat: str
    message_id: int
    text: str
    date: float | None
    chat_title: str | None
    post: Post | None


def expand_inputs(
    inputs: Iterable[str],
    *,
    jsonl_bytes: int = JSONL_PARTITION_BYTES,
    parquet_rows: int = PARQUET_PARTITION_ROWS,
) -> tuple[list[Partition], list[dict]]:
    """The partitions of every input (a file, a directory read recursively, a glob), each file once, in
    order; and the inputs skipped, each ``{"input": …, "reason": …}``."""
    partitions: list[Partition] = []
    skipped: list[dict] = []
    seen: set[str] = set()
    for given in inputs:
        for path, reason in _files(given):
            if reason is not None:
                skipped.append({"input": path, "reason": reason})
                continue
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            try:
                partitions += _partitions_of(path, jsonl_bytes, parquet_rows)
            except OSError as exc:
                skipped.append({"input": path, "reason": f"cannot read ({exc.strerror or exc})"})
            except ValueError as exc:
                skipped.append({"input": path, "reason": str(exc)})
    return partitions, skipped


def _files(given: str) -> Iterator[tuple[str, str | None]]:
    """(file, None) for each file an input names, or (input, why it names none)."""
    if os.path.isdir(given):
        found = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(given)
            for name in names
            if name.lower().endswith(JSONL_SUFFIXES + PARQUET_SUFFIXES + EXPORT_SUFFIXES)
        )
        if not found:
            yield given, "a directory with no .json, .jsonl, .ndjson or .parquet file in it"
        yield from ((path, None) for path in found)
    elif os.path.exists(given):
        yield given, None
    elif glob.has_magic(given):
        found = sorted(path for path in glob.glob(given, recursive=True) if os.path.isfile(path))
        if not found:
            yield given, "no file matches this pattern"
        yield from ((path, None) for path in found)
    else:
        yield given, "no such file or directory"


def kind_of(path: str) -> str:
    """How a file is read, by its extension; anything else is read as a Telegram Desktop export, as by ``scan``."""
    lower = path.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "export"


def _partitions_of(path: str, jsonl_bytes: int, parquet_rows: int) -> list[Partition]:
    kind = kind_of(path)
    if kind == "export":
        with open(path, "rb"):  # an unreadable file is named now, not by a worker
            return [Partition(path, kind)]
    if kind == "jsonl":
        with open(path, "rb"):
            size = os.path.getsize(path)
        if size <= jsonl_bytes:
            return [Partition(path, kind)]
        return [Partition(path, kind, start, min(start + jsonl_bytes, size)) for start in range(0, size, jsonl_bytes)]
    import pyarrow
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except pyarrow.ArrowException as exc:
        raise ValueError(f"not a readable Parquet file ({_first_line(exc)})") from None
    groups, start, rows = [], 0, 0
    for group in range(meta.num_row_groups):
        rows += meta.row_group(group).num_rows
        if rows >= parquet_rows:
            groups.append((start, group + 1))
            start, rows = group + 1, 0
    if start < meta.num_row_groups or not groups:
        groups.append((start, meta.num_row_groups))
    if len(groups) == 1:
        return [Partition(path, kind)]
    return [Partition(path, kind, a, b) for a, b in groups]


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def read_partition(partition: Partition, report: Callable[[str], None], counts: ReadCounts) -> Iterator[ArchivePost]:
    """The posts of one partition. Raises OSError when the file cannot be read, ExportError when it stops
    being readable (the posts before are yielded)."""
    if partition.kind == "export":
        with open(partition.path, "rb") as handle:
            for post in read_export(handle, partition.path, report, counts):
                yield _archive_post(post)
    elif partition.kind == "jsonl":
        yield from _read_jsonl_range(partition, report, counts)
    else:
        yield from _read_parquet(partition, report, counts)


def _archive_post(post: Post) -> ArchivePost:
    return ArchivePost(str(post.chat_id), post.message_id, post.text, post.date, post.chat_title, post)


def _read_jsonl_range(partition: Partition, report: Callable[[str], None], counts: ReadCounts) -> Iterator[ArchivePost]:
    """The lines that start in [start, stop): the line a range's start falls in belongs to the range before."""
    with open(partition.path, "rb") as handle:
        position = partition.start
        if position > 0:
            handle.seek(position - 1)
            position += len(handle.readline()) - 1  # the rest of the line begun before the range
        while partition.stop is None or position < partition.stop:
            raw = handle.readline()
            if not raw:
                break
            where = f"{partition.path} at byte {position}"
            parsed = parse_line(raw, position == 0, where, report, counts)
            position += len(raw)
            if parsed is None:
                continue
            obj, invalid = parsed
            if invalid:
                counts.skipped += 1
                report(f"{where}: {invalid}, replaced by U+FFFD; the line is read")
            post = record_post(obj, where, report, counts)
            if post is not None:
                yield post


def _read_parquet(partition: Partition, report: Callable[[str], None], counts: ReadCounts) -> Iterator[ArchivePost]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(partition.path)
        stop = source.metadata.num_row_groups if partition.stop is None else partition.stop
        names = set(source.schema_arrow.names)
        columns = [c for c in (*_ID_FIELDS, "text", "date", *_CHAT_FIELDS) if c in names]
        row = 0
        for group in range(partition.start, stop):
            for batch in source.iter_batches(row_groups=[group], columns=columns, batch_size=10_000):
                for obj in batch.to_pylist():
                    row += 1
                    counts.messages += 1
                    post = record_post(obj, f"{partition.name} row {row}", report, counts)
                    if post is not None:
                        yield post
    except pyarrow.ArrowException as exc:
        raise ExportError(
            f"{partition.path}: the Parquet file stops being readable after {counts.messages} rows "
            f"({_first_line(exc)}); the rows before were read"
        ) from None


_ID_FIELDS = ("chat_id", "channel", "message_id", "id")
_CHAT_FIELDS = ("chat_title", "chat_username", "chat_type")


def record_post(obj, where: str, report: Callable[[str], None], counts: ReadCounts) -> ArchivePost | None:
    """The post of one JSONL object or Parquet row, or None (counted, and reported when it is a problem)."""
    problem, chat, chat_id, message_id = _record_problem(obj)
    if problem:
        counts.skipped += 1
        report(f"{where}: {problem}; skipped")
        return None
    text = scan_text(obj["text"])
    if text is None:
        counts.no_text += 1
        return None
    try:
        date = post_date(_plain_date(obj.get("date")), "date")
    except ValueError as exc:
        counts.skipped += 1
        report(f"{where}: {exc}; kept with its date unknown")
        date = None
    counts.posts += 1
    title = _str(obj.get("chat_title"))
    post = None
    if chat_id is not None:
        post = Post(chat_id, message_id, text, date, _str(obj.get("chat_type")), title, _str(obj.get("chat_username")))
    return ArchivePost(chat, message_id, text, date, title, post)


def _record_problem(obj) -> tuple[str | None, str, int | None, int]:
    """(why the record cannot be used or None, its chat's name, its Bot API chat id if any, its message id)."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}", "", None, 0
    if not isinstance(obj.get("text"), str):
        return 'missing "text" (a string)', "", None, 0
    chat_id = obj.get("chat_id")
    if chat_id is not None:
        if not _is_int(chat_id):
            return '"chat_id" is not an integer (a Bot API chat id)', "", None, 0
        if problem := chat_id_problem(chat_id):
            return f'"chat_id" {problem}', "", None, 0
        chat = str(chat_id)
    else:
        channel = obj.get("channel")
        if _is_int(channel):
            channel = str(channel)
        if not isinstance(channel, str) or not channel.strip():
            return 'missing "chat_id" (a Bot API chat id) or "channel" (a name): posts are kept by chat', "", None, 0
        chat = safe_text(channel.strip())
    key = "message_id" if obj.get("message_id") is not None else "id"
    message_id = obj.get(key)
    if not _is_int(message_id):
        return 'missing "message_id" or "id" (an integer): posts are kept by chat and message id', "", None, 0
    if problem := message_id_problem(message_id):
        return f'"{key}" {problem}', "", None, 0
    return None, chat, chat_id, message_id


def _plain_date(value):
    """A Parquet timestamp column arrives as a datetime: its Unix time, which post_date checks like any other."""
    if hasattr(value, "timestamp") and not isinstance(value, (int, float, str)):
        try:
            return value.timestamp() if value.tzinfo else value.replace(tzinfo=timezone.utc).timestamp()
        except (OverflowError, ValueError, OSError):
            return str(value)
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str(value) -> str | None:
    return safe_text(value) if isinstance(value, str) and value else None
