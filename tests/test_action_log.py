"""The action log: append-only, shown by export and by the moderation_log view (Datasette)."""

import sqlite3

import pytest

from bot.action_log import ActionAlreadyRecorded, ActionRecord, actions, record_action
from bot.actors import Actors
from bot.flag_export import export_rows
from bot.post import Post
from bot.storage import Storage
from tests.fakes.classifier import FakeClassifier

SAM = Actors("user", 4242, "sam_spam", "Sam Spam", forward_chat_id=-1003333333333, forward_chat_title="Moon Calls")


@pytest.fixture
def storage(tmp_path):
    storage = Storage.open(tmp_path / "a.db", clock=lambda: 1_750_000_000.0)
    post = Post(-1005555555555, 10, "Presale live", chat_type="supergroup", chat_title="Traders", actors=SAM)
    storage.record_scan(post, FakeClassifier().predict(post.text), threshold=0.8, store_benign_text=False)
    return storage


def test_actions_are_exported_with_the_sender(storage):
    flag = storage.flag(1)
    record_action(storage, ActionRecord(flag, "delete", "refused", "Message can't be deleted", 111, "Mia Mod"))
    record_action(storage, ActionRecord(flag, "ban", "done", "ok", 111, "Mia Mod", target_user_id=4242))
    record_action(storage, ActionRecord(flag, "delete", "dry_run", "p=0.97 ≥ 0.95"))
    [row] = list(export_rows(storage))
    assert row["sender"] == "user Sam Spam (@sam_spam, id 4242), forwarded from Moon Calls (id -1003333333333)"
    assert row["actions"] == (
        "delete refused by Mia Mod (111) at 2025-06-15T15:06:40+00:00: Message can't be deleted; "
        "ban done by Mia Mod (111) at 2025-06-15T15:06:40+00:00: ok; "
        "delete dry_run by the bot at 2025-06-15T15:06:40+00:00: p=0.97 ≥ 0.95"
    )
    log = list(storage.db.query("SELECT * FROM moderation_log"))
    assert [(r["action"], r["outcome"], r["actor"], r["chat_title"], r["link"]) for r in log] == [
        ("delete", "dry_run", "bot", "Traders", "https://t.me/c/5555555555/10"),
        ("ban", "done", "Mia Mod", "Traders", "https://t.me/c/5555555555/10"),
        ("delete", "refused", "Mia Mod", "Traders", "https://t.me/c/5555555555/10"),
    ]


def test_the_log_is_append_only_and_a_press_is_recorded_once(storage):
    flag = storage.flag(1)
    record_action(storage, ActionRecord(flag, "delete", "done", "ok", 111, "Mia", callback_query_id="q1"))
    with pytest.raises(ActionAlreadyRecorded):
        record_action(storage, ActionRecord(flag, "delete", "done", "ok", 111, "Mia", callback_query_id="q1"))
    for sql in ("UPDATE moderation_actions SET outcome = 'refused'", "DELETE FROM moderation_actions"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            storage.db.execute(sql)
    assert [a["outcome"] for a in actions(storage)] == ["done"]
