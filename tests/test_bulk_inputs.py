"""What bulk-scan reads: inputs expanded into partitions, every JSONL line in exactly one partition, JSONL and
Parquet records checked like every other source's."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.bulk_inputs import Partition, expand_inputs, read_partition, record_post
from bot.desktop_export import ReadCounts
from bot.jsonl_posts import read_jsonl

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "telegram_export_channel.json"


def read_all(partitions) -> tuple[list, list[str], ReadCounts]:
    problems, counts, posts = [], ReadCounts(), []
    for partition in partitions:
        posts += list(read_partition(partition, problems.append, counts))
    return posts, problems, counts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=40),
    chunk=st.integers(1, 200),
    blank=st.booleans(),
)
def test_every_jsonl_line_is_read_by_exactly_one_partition_in_order(tmp_path, texts, chunk, blank):
    path = tmp_path / "posts.jsonl"
    lines = [json.dumps({"text": f"post {n} {t}", "chat_id": -1001, "message_id": n + 1}) for n, t in enumerate(texts)]
    path.write_text("\n".join(lines) + ("\n\n" if blank else ""), encoding="utf-8")
    partitions, skipped = expand_inputs([str(path)], jsonl_bytes=chunk)
    assert skipped == []
    assert len(partitions) == -(-path.stat().st_size // chunk) if path.stat().st_size > chunk else len(partitions) == 1
    posts, problems, counts = read_all(partitions)
    assert problems == []
    assert [p.message_id for p in posts] == list(range(1, len(texts) + 1))
    # The same posts `compliance-bot scan` reads from the file.
    with open(path, "rb") as handle:
        assert [p.post for p in posts] == list(read_jsonl(handle, str(path), lambda m: None, ReadCounts()))


def test_directories_globs_and_missing_inputs(tmp_path):
    (tmp_path / "archive" / "2024").mkdir(parents=True)
    (tmp_path / "archive" / "a.jsonl").write_text('{"text": "x", "chat_id": -1, "message_id": 1}\n')
    (tmp_path / "archive" / "2024" / "b.ndjson").write_text('{"text": "y", "chat_id": -1, "message_id": 2}\n')
    (tmp_path / "archive" / "notes.txt").write_text("not an input")
    (tmp_path / "archive" / "2024" / "result.json").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "empty").mkdir()
    partitions, skipped = expand_inputs(
        [
            str(tmp_path / "archive"),
            str(tmp_path / "archive" / "**" / "*.jsonl"),  # the same file again: read once
            str(tmp_path / "nothing-*.parquet"),
            str(tmp_path / "gone.jsonl"),
            str(tmp_path / "empty"),
        ]
    )
    assert [(Path(p.path).name, p.kind) for p in partitions] == [
        ("b.ndjson", "jsonl"),
        ("result.json", "export"),
        ("a.jsonl", "jsonl"),
    ]
    assert [(Path(s["input"]).name, s["reason"]) for s in skipped] == [
        ("nothing-*.parquet", "no file matches this pattern"),
        ("gone.jsonl", "no such file or directory"),
        ("empty", "a directory with no .json, .jsonl, .ndjson or .parquet file in it"),
    ]
    posts, _, _ = read_all(partitions)
    assert len(posts) == 32  # 30 of the export and one of each JSONL file


def test_partition_keys_are_stable_and_distinct():
    a, b = Partition("/x/a.jsonl", "jsonl", 0, 64), Partition("/x/a.jsonl", "jsonl", 64, 128)
    assert a.key == Partition("/x/a.jsonl", "jsonl", 0, 64).key and a.key != b.key
    assert "bytes 64-128" in b.name


def test_parquet_row_groups_become_partitions_and_timestamps_are_dates(tmp_path):
    from datetime import datetime, timezone

    rows = [
        {"channel": "chan", "id": n, "text": f"post {n}", "date": datetime(2024, 1, 1, tzinfo=timezone.utc)}
        for n in range(1, 26)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet", row_group_size=5)
    partitions, skipped = expand_inputs([str(tmp_path / "p.parquet")], parquet_rows=10)
    assert skipped == [] and [(p.start, p.stop) for p in partitions] == [(0, 2), (2, 4), (4, 5)]
    posts, problems, counts = read_all(partitions)
    assert problems == [] and counts.posts == 25
    assert [p.message_id for p in posts] == list(range(1, 26))
    assert {p.chat for p in posts} == {"chan"} and {p.post for p in posts} == {None}
    assert posts[0].date == datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()


def test_records_are_checked_like_every_source(tmp_path):
    problems, counts = [], ReadCounts()
    cases = [
        ({"text": "a", "chat_id": -1001, "message_id": 5}, None),
        ({"text": "a", "channel": "durov", "id": 5}, None),
        ({"text": "a", "channel": 12345, "id": 5}, None),
        ({"text": "a", "message_id": 5}, 'missing "chat_id"'),
        ({"text": "a", "chat_id": "x", "message_id": 5}, '"chat_id" is not an integer'),
        ({"text": "a", "chat_id": 10**15, "message_id": 5}, "outside Telegram's chat ids"),
        ({"text": "a", "chat_id": -1001, "id": -3}, "outside Telegram's message ids"),
        ({"text": "a", "chat_id": -1001, "id": True}, 'missing "message_id" or "id"'),
        ({"chat_id": -1001, "id": 3}, 'missing "text"'),
        (["not", "an", "object"], "expected a JSON object"),
    ]
    for obj, problem in cases:
        before = len(problems)
        post = record_post(obj, "where", problems.append, counts)
        if problem is None:
            assert post is not None and len(problems) == before
        else:
            assert post is None and problem in problems[-1] and problems[-1].startswith("where: ")
    dated = record_post({"text": "a", "chat_id": -1001, "id": 1, "date": "soon"}, "w", problems.append, counts)
    assert dated is not None and dated.date is None and "kept with its date unknown" in problems[-1]
    assert record_post({"text": "", "chat_id": -1001, "id": 1}, "w", problems.append, counts) is None
    assert counts.no_text == 1
