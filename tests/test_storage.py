"""The SQLite store: migrations, one row per post, edit history, flags following edits, append-only reviews."""

import sqlite3

import pytest

from bot.post import Post
from bot.storage import Storage
from tests.fakes.classifier import FakeClassifier

CLF = FakeClassifier()


def scan(storage, post, **kw):
    return storage.record_scan(post, CLF.predict(post.text), threshold=kw.get("threshold", 0.8),
                               store_benign_text=kw.get("store_benign_text", False))


def test_migrations_apply_once_and_wal_is_on(tmp_path):
    path = tmp_path / "x.db"
    Storage.open(path).close()
    storage = Storage.open(path)  # a second start applies nothing again
    assert storage.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"chats", "posts", "post_versions", "flags", "reviews", "alerts", "outbox"} <= set(storage.db.table_names())


def test_an_update_seen_twice_is_stored_once(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    post = Post(-100, 1, "Presale live", chat_title="C")
    assert scan(storage, post).flag_id == 1
    assert scan(storage, post).duplicate
    assert len(storage.post_versions(-100, 1)) == 1 and len(storage.all_flags()) == 1


def test_edits_keep_history_and_the_flag_follows_the_latest_text(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    scan(storage, Post(-100, 1, "Hello all"))
    assert storage.post(-100, 1)["text"] is None  # benign: metadata only
    first = scan(storage, Post(-100, 1, "Presale live now"))
    assert storage.flag(first.flag_id)["label"] == "ico"
    scan(storage, Post(-100, 1, "VIP signals, join"))
    assert storage.flag(first.flag_id)["label"] == "trading_service"
    withdrawn = scan(storage, Post(-100, 1, "sorry, wrong chat"))
    assert withdrawn.withdrawn and storage.flag(first.flag_id)["status"] == "withdrawn"
    versions = storage.post_versions(-100, 1)
    assert [v["label"] for v in versions] == ["benign", "ico", "trading_service", "benign"]
    assert [v["text"] is None for v in versions] == [True, False, False, True]


def test_benign_text_is_kept_when_configured(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    scan(storage, Post(-100, 1, "Hello all"), store_benign_text=True)
    assert storage.post(-100, 1)["text"] == "Hello all"


def test_same_text_in_several_chats_makes_one_alert(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    a = scan(storage, Post(-100, 1, "Presale live!", chat_title="A"))
    b = scan(storage, Post(-200, 9, "presale   LIVE!", chat_title="B"))
    assert a.alert_id == b.alert_id
    assert [f["chat_title"] for f in storage.alert_flags(a.alert_id)] == ["A", "B"]
    # Once reviewed, the same text elsewhere is a new alert: a decision is not stretched to new chats.
    storage.record_review(a.alert_id, "confirm", None, 1, "M")
    assert scan(storage, Post(-300, 2, "Presale live!")).alert_id != a.alert_id


def test_below_threshold_flags_do_not_notify(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    outcome = scan(storage, Post(-100, 1, "maybe-token soon"))
    assert outcome.flag_id and storage.alert(outcome.alert_id)["notify"] == 0
    assert storage.unsent_alerts() == []


def test_reviews_are_append_only(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    alert_id = scan(storage, Post(-100, 1, "Presale live")).alert_id
    storage.record_review(alert_id, "relabel", "trading_service", 7, "Mod")
    storage.record_review(alert_id, "false_positive", None, 8, "Other")
    assert [(r["decision"], r["old_label"], r["new_label"]) for r in storage.reviews()] == [
        ("relabel", "ico", "trading_service"), ("false_positive", "trading_service", "trading_service")]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        storage.db.execute("UPDATE reviews SET decision = 'confirm'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        storage.db.execute("DELETE FROM reviews")


def test_a_read_only_database_refuses_writes_and_keeps_its_data(tmp_path):
    path = tmp_path / "x.db"
    storage = Storage.open(path)
    scan(storage, Post(-100, 1, "Presale live"))
    storage.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    import sqlite_utils
    read_only = Storage(sqlite_utils.Database(conn))
    with pytest.raises(sqlite3.OperationalError):
        scan(read_only, Post(-100, 2, "Airdrop claim"))
    conn.close()
    assert len(Storage.open(path).all_flags()) == 1


def test_a_flag_in_a_language_the_model_does_not_cover_waits_for_the_digest(tmp_path):
    from classifier.verdict import Verdict

    storage = Storage.open(tmp_path / "x.db")
    scores = {"ico": 0.97, "trading_service": 0.02, "benign": 0.01}
    russian = storage.record_scan(Post(-100, 1, "Пресейл"), Verdict("ico", scores, [], "m", "ru"),
                                  threshold=0.8, store_benign_text=False)
    english = storage.record_scan(Post(-100, 2, "Presale"), Verdict("ico", scores, [], "m", "en"),
                                  threshold=0.8, store_benign_text=False)
    assert russian.flag_id and storage.alert(russian.alert_id)["notify"] == 0
    assert storage.alert(english.alert_id)["notify"] == 1
    assert [a["id"] for a in storage.unsent_alerts()] == [english.alert_id]
