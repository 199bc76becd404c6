"""`bulk-scan --into-db`: a bulk scan's flags merged into the bot's database once, for review, not for alerts."""

from __future__ import annotations

from bot.bulk_inputs import ArchivePost
from bot.bulk_merge import merge_flags
from bot.bulk_scan import _PartWriter
from bot.post import Post
from bot.storage import Storage
from tests.fakes.classifier import FakeClassifier

CLF = FakeClassifier()


def archive_post(chat_id, message_id, text, channel=None) -> ArchivePost:
    post = None if channel else Post(chat_id, message_id, text, 1714557600.0 + message_id, "channel", "News")
    return ArchivePost(channel or str(chat_id), message_id, text, 1714557600.0 + message_id, "News", post)


def write_dataset(directory, posts, write_all=False):
    directory.mkdir(parents=True, exist_ok=True)
    part = _PartWriter(directory / f"part-{len(list(directory.iterdir()))}.parquet", "input.jsonl", write_all)
    part.add(posts, CLF.predict_many([p.text for p in posts]))
    part.close()
    return directory


def test_merging_twice_stores_each_flag_once_and_alerts_nobody(tmp_path):
    posts = [archive_post(-1001, n, f"presale live now {n}") for n in range(1, 6)]
    posts += [archive_post(-1001, n, f"market news {n}") for n in range(6, 9)]
    posts += [archive_post(None, 1, "VIP signals join", channel="somechan")]
    dataset = write_dataset(tmp_path / "flags", posts, write_all=True)  # benign rows are not merged
    storage = Storage.open(tmp_path / "bot.db")
    first = merge_flags(dataset, storage)
    assert (first.stored, first.already, first.no_chat_id) == (5, 0, 1)
    second = merge_flags(dataset, storage)
    assert (second.stored, second.already, second.no_chat_id) == (0, 5, 1)
    rows = list(storage.db.query("SELECT * FROM flag_rows ORDER BY message_id"))
    assert [r["message_id"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["status"] for r in rows} == {"pending"} and rows[0]["chat_title"] == "News"
    assert rows[0]["date"] == 1714557601.0 and rows[0]["text"] == "presale live now 1"
    assert rows[0]["reasons"].startswith('[{"kind": "word", "feature": "presale"')
    assert storage.db.execute("SELECT COUNT(*) FROM alerts WHERE notify = 1").fetchone()[0] == 0
    assert storage.count_pending_flags() == 5


def test_a_later_scan_with_an_edited_text_reopens_the_flag_as_a_new_version(tmp_path):
    storage = Storage.open(tmp_path / "bot.db")
    merge_flags(write_dataset(tmp_path / "one", [archive_post(-1001, 1, "presale live now")]), storage)
    flag = storage.flag(1)
    storage.db.execute("UPDATE flags SET status = 'confirmed' WHERE id = 1")
    counts = merge_flags(write_dataset(tmp_path / "two", [archive_post(-1001, 1, "airdrop claim today")]), storage)
    assert counts.stored == 1
    assert [v["version"] for v in storage.post_versions(-1001, 1)] == [1, 2]
    assert storage.flag(1)["status"] == "pending" and storage.flag(1)["label"] == flag["label"] == "ico"


def test_an_empty_output_merges_nothing(tmp_path):
    (tmp_path / "flags").mkdir()
    counts = merge_flags(tmp_path / "flags", Storage.open(tmp_path / "bot.db"))
    assert (counts.stored, counts.already, counts.no_chat_id) == (0, 0, 0)
