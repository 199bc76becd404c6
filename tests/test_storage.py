"""The SQLite store: migrations, one row per post, edit history, flags following edits, append-only reviews."""

import sqlite3
from dataclasses import replace

import pytest

from bot.flag_lifecycle import IllegalTransition
from bot.post import Post
from bot.storage import ReviewAlreadyRecorded, Storage, migrations
from tests.fakes.classifier import FakeClassifier

CLF = FakeClassifier()


def scan(storage, post, **kw):
    return storage.record_scan(
        post,
        CLF.predict(post.text),
        threshold=kw.get("threshold", 0.8),
        store_benign_text=kw.get("store_benign_text", False),
    )


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
        ("relabel", "ico", "trading_service"),
        ("false_positive", "trading_service", "trading_service"),
    ]
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
    russian = storage.record_scan(
        Post(-100, 1, "Пресейл"), Verdict("ico", scores, [], "m", "ru"), threshold=0.8, store_benign_text=False
    )
    english = storage.record_scan(
        Post(-100, 2, "Presale"), Verdict("ico", scores, [], "m", "en"), threshold=0.8, store_benign_text=False
    )
    assert russian.flag_id and storage.alert(russian.alert_id)["notify"] == 0
    assert storage.alert(english.alert_id)["notify"] == 1
    assert [a["id"] for a in storage.unsent_alerts()] == [english.alert_id]


def test_an_existing_database_upgrades_to_the_flag_rows_view(tmp_path):
    import sqlite_utils

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m003_flag_rows_view")  # a database of the previous release
    old = Storage(db)
    scan(old, Post(-1001111111111, 5, "Presale live", chat_title="Channel"))
    scan(old, Post(-1002222222222, 7, "VIP signals, join", chat_title="Public", chat_username="public"))
    basic = scan(old, Post(-4000001, 1, "airdrop claim", chat_title="Basic group"))
    old.record_review(basic.alert_id, "confirm", None, 111, "Mia")
    before = list(db.query("SELECT * FROM flag_details ORDER BY flag_id"))
    assert "flag_rows" not in db.view_names()
    old.close()
    storage = Storage.open(path)
    applied = [m.name for m in migrations.applied(storage.db)]
    assert applied[:3] == ["m001_initial", "m002_flag_details_view", "m003_flag_rows_view"]
    assert migrations.pending(storage.db) == []  # and every later step
    assert list(storage.db.query("SELECT * FROM flag_details ORDER BY flag_id")) == before  # same columns and values
    rows = storage.all_flags()
    assert [r["link"] for r in rows] == ["https://t.me/c/1111111111/5", "https://t.me/public/7", None]
    assert (rows[2]["reviewer_name"], rows[2]["status"], rows[0]["text"]) == ("Mia", "confirmed", "Presale live")
    assert "reviews_flag" in {index.name for index in storage.db["reviews"].indexes}


def test_the_store_refuses_what_the_flag_life_cycle_refuses(tmp_path):
    """A withdrawn flag takes no review, and an unknown decision changes nothing."""
    storage = Storage.open(tmp_path / "x.db")
    flagged = scan(storage, Post(-100, 1, "Presale live"))
    scan(storage, Post(-100, 1, "sorry, wrong chat"))
    assert storage.record_review(flagged.alert_id, "confirm", None, 1, "M") == 0
    with pytest.raises(IllegalTransition):
        storage.record_review(flagged.alert_id, "escalate", None, 1, "M")
    assert storage.flag(flagged.flag_id)["status"] == "withdrawn" and storage.reviews() == []


def test_path_and_one_transaction_around_several_writes(tmp_path):
    assert Storage.open(":memory:").path is None
    storage = Storage.open(tmp_path / "x.db")
    assert storage.path == str(tmp_path / "x.db")
    with pytest.raises(RuntimeError), storage.transaction():
        scan(storage, Post(-100, 1, "Presale live"))
        scan(storage, Post(-100, 2, "VIP signals"))
        raise RuntimeError("stop")
    assert storage.all_flags() == [] and storage.post(-100, 1) is None  # both rolled back
    with storage.transaction():
        scan(storage, Post(-100, 1, "Presale live"))
        scan(storage, Post(-100, 2, "VIP signals"))
    assert [f["message_id"] for f in Storage.open(tmp_path / "x.db").all_flags()] == [1, 2]


def test_ctrl_c_during_a_read_in_a_transaction_stays_a_ctrl_c(tmp_path):
    """sqlite-utils' query() cleans up after an error by rolling back to its savepoint; a Ctrl-C landing just
    after it released that savepoint makes the clean-up fail with "no such savepoint". The transaction must
    still roll back whole and the Ctrl-C come out as one (a scan then stops with exit code 130)."""
    storage = Storage.open(tmp_path / "x.db")
    real = storage.db.conn

    class CtrlCAfterRelease:
        armed = True

        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            cursor = real.execute(sql, *args)
            if self.armed and sql == 'RELEASE "sqlite_utils_query"':
                self.armed = False
                raise KeyboardInterrupt
            return cursor

    storage.db.conn = CtrlCAfterRelease()
    with pytest.raises(KeyboardInterrupt), storage.transaction():
        scan(storage, Post(-100, 1, "Presale live"))
    storage.db.conn = real
    assert not real.in_transaction and storage.post(-100, 1) is None and storage.chat(-100) is None


def test_a_review_is_recorded_once_per_callback_query(tmp_path):
    """A button press is one callback query: Telegram may deliver it twice, the review log gets it once."""
    storage = Storage.open(tmp_path / "x.db")
    a = scan(storage, Post(-100, 1, "Presale live!", chat_title="A"))
    scan(storage, Post(-200, 9, "presale   LIVE!", chat_title="B"))  # the same alert: one press reviews both flags
    assert storage.record_review(a.alert_id, "confirm", None, 1, "M", callback_query_id="q1") == 2
    reviews, flags = storage.reviews(), storage.all_flags()
    outbox = list(storage.db.query("SELECT * FROM outbox"))
    assert [r["callback_query_id"] for r in reviews] == ["q1", "q1"]
    for decision, label in (("confirm", None), ("false_positive", None), ("relabel", "trading_service")):
        with pytest.raises(ReviewAlreadyRecorded, match="callback query 'q1' is already recorded"):
            storage.record_review(a.alert_id, decision, label, 1, "M", callback_query_id="q1")
    assert storage.reviews() == reviews and storage.all_flags() == flags
    assert list(storage.db.query("SELECT * FROM outbox")) == outbox
    # A new press is a new review; a review that comes from no button (None) is never taken for another.
    assert storage.record_review(a.alert_id, "relabel", "trading_service", 2, "N", callback_query_id="q2") == 2
    assert storage.record_review(a.alert_id, "confirm", None, 2, "N") == 2
    assert storage.record_review(a.alert_id, "confirm", None, 2, "N") == 2
    assert [r["callback_query_id"] for r in storage.reviews()] == ["q1", "q1", "q2", "q2", None, None, None, None]
    # The database itself holds one row per press and flag, whoever writes to it.
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        storage.db.execute(
            """INSERT INTO reviews (flag_id, reviewer_id, reviewer_name, decision, old_label, new_label, at,
                                    callback_query_id) VALUES (?, 1, 'M', 'confirm', 'ico', 'ico', 0, 'q1')""",
            [flags[0]["id"]],
        )


def test_an_existing_database_upgrades_to_reviews_that_name_their_callback_query(tmp_path):
    import sqlite_utils

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m004_review_callback_query")  # a database of the previous release
    old = Storage(db)
    flagged = scan(old, Post(-1001111111111, 5, "Presale live", chat_title="Channel"))
    old.record_review(flagged.alert_id, "confirm", None, 111, "Mia")
    [before] = list(db.query("SELECT * FROM reviews"))
    assert "callback_query_id" not in before
    old.close()
    storage = Storage.open(path)
    assert "m004_review_callback_query" in [m.name for m in migrations.applied(storage.db)]
    assert storage.reviews() == [before | {"callback_query_id": None}]  # the old review as it was
    assert "reviews_callback_query" in {index.name for index in storage.db["reviews"].indexes if index.unique}
    assert storage.record_review(flagged.alert_id, "false_positive", None, 111, "Mia", callback_query_id="77") == 1
    with pytest.raises(ReviewAlreadyRecorded):
        storage.record_review(flagged.alert_id, "false_positive", None, 111, "Mia", callback_query_id="77")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # still append-only
        storage.db.execute("UPDATE reviews SET callback_query_id = 'forged'")
    assert [r["decision"] for r in storage.reviews()] == ["confirm", "false_positive"]


# -- record_scans: a batch stores what record_scan stores post by post ------------------------------
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bot.actors import Actors  # noqa: E402
from classifier.verdict import Verdict  # noqa: E402
from classifier.watchlist import LOOKALIKE, NAME, PlatformMatch  # noqa: E402

BATCH_TEXTS = ["presale live now", "VIP signals join", "market news today", "airdrop claim", "收U 汇率", "hello"]
BATCH_CHATS = [(-1001, "channel", "News", "news"), (-1002, "supergroup", None, None), (-1003, None, "Third", None)]
scan_strategy = st.tuples(st.sampled_from(BATCH_CHATS), st.integers(1, 6), st.sampled_from(BATCH_TEXTS))


def dump(storage) -> dict:
    tables = ("chats", "posts", "post_versions", "flags", "alerts", "outbox", "post_actors")
    return {t: sorted(map(tuple, storage.db.execute(f"SELECT * FROM {t}").fetchall()), key=repr) for t in tables}


# Listed platforms some texts name or link, as the classifier's watchlist matching reports them: a mention,
# and a look-alike link that alerts at once whatever the score. Both store paths must keep them alike.
BATCH_PLATFORMS = {
    "VIP signals join": (PlatformMatch("binance", NAME, "binance", "binance"),),
    "airdrop claim": (PlatformMatch("okx", LOOKALIKE, "0kx-app.example", "okx.com"),),
    "market news today": (PlatformMatch("bybit", NAME, "bybit", "bybit"),),
}


def batch_verdict(text: str) -> Verdict:
    return replace(CLF.predict(text), watchlist=BATCH_PLATFORMS.get(text, ()))


def as_post(item) -> Post:
    (chat_id, kind, title, username), message_id, text = item
    # Some posts come with their sender, some with text read from a picture: both paths store them alike.
    actors = Actors("user", user_id=message_id, username=f"u{message_id}") if message_id % 2 else None
    return Post(
        chat_id, message_id, text, 1.0 + message_id, kind, title, username, actors=actors, from_image=message_id > 4
    )


@settings(max_examples=150, deadline=None)
@example(  # a new post whose text joins an alert already sent: the sent message is marked for an edit
    before=[(BATCH_CHATS[0], 1, "presale live now")],
    sent="sent",
    batches=[[(BATCH_CHATS[1], 2, "presale live now")]],
    threshold=0.8,
)
@given(
    before=st.lists(scan_strategy, max_size=8),
    sent=st.sampled_from(["no", "sent", "sent and reviewed"]),
    batches=st.lists(st.lists(scan_strategy, max_size=12), max_size=3),
    threshold=st.sampled_from([0.8, float("inf")]),
)
def test_a_batch_stores_exactly_what_storing_post_by_post_stores(before, sent, batches, threshold):
    one, many = Storage.open(":memory:", clock=lambda: 1000.0), Storage.open(":memory:", clock=lambda: 1000.0)
    for storage in (one, many):
        for item in before:
            scan(storage, as_post(item))
        first = next(storage.db.query("SELECT id FROM alerts ORDER BY id LIMIT 1"), None)
        if sent != "no" and first:
            # An alert already sent (a new flag joining it marks it for an edit), maybe reviewed (none joins it).
            outbox_id = storage.queue_message("alert", 1, "x")
            storage.db.execute("UPDATE alerts SET outbox_id = ?", [outbox_id])
            storage.mark_sent(outbox_id, 99)
            if sent == "sent and reviewed":
                storage.record_review(first["id"], "confirm", None, 7, "moderator")
    outcomes_one, outcomes_many = [], []
    for batch in batches:
        pairs = [(as_post(item), batch_verdict(item[2])) for item in batch]
        outcomes_one += [one.record_scan(p, v, threshold=threshold, store_benign_text=False) for p, v in pairs]
        outcomes_many += many.record_scans(pairs, threshold=threshold, store_benign_text=False)
    assert outcomes_many == outcomes_one
    assert dump(many) == dump(one)


def test_a_batch_is_one_transaction_and_a_failure_stores_none_of_it(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    scan(storage, Post(-1001, 1, "presale live now"))
    pairs = [(Post(-1001, n, f"airdrop claim {n}"), CLF.predict("airdrop claim")) for n in range(2, 50)]
    pairs.append((Post(-1001, 50, "airdrop"), None))  # a broken verdict at the end of the batch
    with pytest.raises(AttributeError):
        storage.record_scans(pairs, threshold=0.8, store_benign_text=False)
    assert storage.db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 1
    outcomes = storage.record_scans(pairs[:-1], threshold=0.8, store_benign_text=False)
    assert len({o.flag_id for o in outcomes}) == 48 and len({o.alert_id for o in outcomes}) == 48
    assert storage.db.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == 49


def test_posts_record_whether_their_text_came_from_an_image_and_old_databases_upgrade(tmp_path):
    import sqlite_utils

    from bot.flag_export import export_rows

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m007_image_text")  # a database of a release without OCR
    old = Storage(db)
    scan(old, Post(-1001111111111, 5, "Presale live", chat_title="Channel"))
    old.close()
    storage = Storage.open(path)
    assert "m007_image_text" in [m.name for m in migrations.applied(storage.db)]
    assert storage.post(-1001111111111, 5)["text_from_image"] == 0  # what was stored stays, as written text
    picture = Post(-1001111111111, 6, "🖼 PRESALE live now", chat_title="Channel", from_image=True)
    scan(storage, picture)
    assert storage.post(-1001111111111, 6)["text_from_image"] == 1
    assert [(r["message_id"], r["text_from_image"]) for r in export_rows(storage)] == [(5, False), (6, True)]
    # An edit that drops the picture (its caption alone now) is text again.
    scan(storage, Post(-1001111111111, 6, "presale, caption only", chat_title="Channel"))
    assert storage.post(-1001111111111, 6)["text_from_image"] == 0
    view = {v["message_id"]: v["text"] for v in storage.db.query("SELECT * FROM flag_details")}
    assert view == {5: "Presale live", 6: "presale, caption only"}  # the Datasette view still reads through
