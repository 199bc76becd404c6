"""Posts handled together are classified in one call and stored in one transaction, in arrival order."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.post import Post
from bot.services import Services
from bot.storage import Storage
from tests.fakes.classifier import FakeClassifier


class CountingClassifier(FakeClassifier):
    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def predict_many(self, texts):
        self.batches.append(len(texts))
        return super().predict_many(texts)


def make_services(tmp_path) -> Services:
    storage = Storage.open(tmp_path / "bot.db", timeout=0.05)
    return Services(
        storage=storage, classifier=CountingClassifier(), moderator_chat_id=-100777, moderator_ids=frozenset({1})
    )


def post(message_id: int, text: str) -> Post:
    return Post(chat_id=-1001, message_id=message_id, text=text, chat_type="channel", chat_title="C", chat_username="c")


async def test_a_burst_is_one_model_call_and_one_commit_and_an_edit_lands_after_its_post(tmp_path):
    svc = make_services(tmp_path)
    commits = []
    svc.storage.db.conn.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    posts = [post(i, f"news {i}") for i in range(1, 50)] + [post(7, "Presale now"), post(7, "edited back to news")]
    await asyncio.gather(*(svc.scans.scan(svc, p) for p in posts))
    assert svc.classifier.batches == [len(posts)]
    assert len(commits) == 1
    assert svc.scans.in_flight == 0
    rows = svc.storage.db.execute(
        "SELECT version, label FROM post_versions WHERE message_id = 7 ORDER BY version"
    ).fetchall()
    assert rows == [(1, "benign"), (2, "ico"), (3, "benign")]
    assert svc.storage.db.execute("SELECT status FROM flags WHERE message_id = 7").fetchall() == [("withdrawn",)]


async def test_a_locked_database_keeps_the_whole_batch_in_order(tmp_path):
    svc = make_services(tmp_path)
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    await asyncio.gather(*(svc.scans.scan(svc, post(i, f"news {i}")) for i in range(1, 11)))
    assert [p.message_id for p, _ in svc.unsaved] == list(range(1, 11)) and svc.scans.in_flight == 0
    other.execute("COMMIT")
    from bot.scan_store import retry_unsaved

    assert retry_unsaved(svc) == 10
    assert svc.storage.db.execute("SELECT COUNT(*) FROM posts").fetchone() == (10,)
