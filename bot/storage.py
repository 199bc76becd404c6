"""Everything the bot keeps in SQLite: chats, posts and their edits, flags, reviews, alerts, outbox.

One :class:`Storage` owns one connection and is used from the event-loop thread only. Every write is
one transaction (:meth:`Storage.transaction`, sqlite-utils' ``atomic``), so a locked or read-only file
fails a write whole and leaves what is stored intact. Reads go through sqlite-utils' ``query``. Every flag
the bot shows comes from the ``flag_rows`` view, which also makes its post link; a flag's status only
changes through :func:`flag_transition`. Times are UTC epoch seconds (floats); the clock is injectable for tests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from bot.post import Post

FLAG_STATUSES = ("pending", "confirmed", "false_positive", "relabelled", "withdrawn")
_REVIEWED = frozenset({"confirmed", "false_positive", "relabelled"})
# The life of a flag, in one place: every change of a flag's status goes through `flag_transition`.
# event: (the statuses it may leave, None meaning "no flag yet"; the status it leads to)
FLAG_TRANSITIONS: dict[str, tuple[frozenset, str]] = {
    # A post is scanned as promotion for the first time.
    "flag": (frozenset({None}), "pending"),
    # An edit that still reads as promotion is a new claim: whatever was decided about the old text is
    # reopened, and a withdrawn flag comes back.
    "reopen": (frozenset({"pending", "withdrawn"}) | _REVIEWED, "pending"),
    # An edit made the post benign: the flag follows the latest text.
    "withdraw": (frozenset({"pending"}) | _REVIEWED, "withdrawn"),
    # A moderator's decision (the review buttons). A reviewed flag may be reviewed again (the latest review
    # stands); a withdrawn one may not: the text that was flagged is gone.
    "confirm": (frozenset({"pending"}) | _REVIEWED, "confirmed"),
    "false_positive": (frozenset({"pending"}) | _REVIEWED, "false_positive"),
    "relabel": (frozenset({"pending"}) | _REVIEWED, "relabelled"),
}
REVIEW_DECISIONS = ("confirm", "false_positive", "relabel")


class IllegalTransition(ValueError):
    """A change of a flag's status that FLAG_TRANSITIONS does not allow."""


class ReviewAlreadyRecorded(Exception):
    """A review for a button press (callback query) that is already in the review log: Telegram delivered
    the same press again. ``decision`` is the one recorded for it."""

    def __init__(self, callback_query_id: str, decision: str):
        super().__init__(f"the review of callback query {callback_query_id!r} is already recorded ({decision})")
        self.callback_query_id, self.decision = callback_query_id, decision


def flag_may(status: str | None, event: str) -> bool:
    """Whether a flag in ``status`` (None: no flag yet) may take ``event``."""
    return status in FLAG_TRANSITIONS[event][0]


def flag_transition(status: str | None, event: str) -> str:
    """The status a flag in ``status`` (None: no flag yet) moves to on ``event``; refuses what the table does not allow."""
    if event not in FLAG_TRANSITIONS:
        raise IllegalTransition(f"no such flag event: {event!r}")
    if not flag_may(status, event):
        raise IllegalTransition(f"a {status or 'new'} flag cannot take {event!r}")
    return FLAG_TRANSITIONS[event][1]


migrations = sqlite_utils.Migrations("compliance-bot")


@migrations()
def m001_initial(db: sqlite_utils.Database):
    db.executescript(
        """
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY, type TEXT, title TEXT, username TEXT,
            status TEXT NOT NULL DEFAULT 'seen', first_seen REAL NOT NULL, updated_at REAL NOT NULL
        );
        CREATE TABLE posts (
            chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL,
            date REAL, text TEXT, text_hash TEXT, label TEXT, score REAL, model_version TEXT,
            versions INTEGER NOT NULL DEFAULT 1, scanned_at REAL NOT NULL,
            PRIMARY KEY (chat_id, message_id)
        );
        -- Every text a post has had, oldest first; benign versions keep no text unless configured.
        CREATE TABLE post_versions (
            id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL,
            version INTEGER NOT NULL, seen_at REAL NOT NULL, text TEXT, text_hash TEXT,
            label TEXT, score REAL, UNIQUE (chat_id, message_id, version)
        );
        -- Alerts group flags of the same text; `notify` says whether it goes to the moderators at once.
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, text_hash TEXT NOT NULL, label TEXT NOT NULL,
            notify INTEGER NOT NULL, outbox_id INTEGER, created_at REAL NOT NULL
        );
        CREATE INDEX alerts_unsent ON alerts (notify, outbox_id);
        CREATE INDEX alerts_text ON alerts (text_hash);
        CREATE TABLE flags (
            id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL,
            label TEXT NOT NULL, score REAL NOT NULL, scores TEXT NOT NULL, reasons TEXT NOT NULL,
            model_version TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
            alert_id INTEGER REFERENCES alerts(id), text_hash TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL,
            UNIQUE (chat_id, message_id)
        );
        CREATE INDEX flags_alert ON flags (alert_id);
        CREATE INDEX flags_created ON flags (created_at);
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY, flag_id INTEGER NOT NULL REFERENCES flags(id),
            reviewer_id INTEGER NOT NULL, reviewer_name TEXT, decision TEXT NOT NULL,
            old_label TEXT NOT NULL, new_label TEXT NOT NULL, at REAL NOT NULL
        );
        -- The review log is evidence: it only grows.
        CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
            BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
        CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
            BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
        -- Messages to send to moderators: kind 'alert' renders its alerts at send time, others carry text.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, chat_id INTEGER NOT NULL, text TEXT,
            status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL, last_error TEXT, message_id INTEGER,
            needs_edit INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, sent_at REAL
        );
        CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY, period_start REAL NOT NULL, period_end REAL NOT NULL,
            flags INTEGER NOT NULL, outbox_id INTEGER
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


@migrations()
def m002_flag_details_view(db: sqlite_utils.Database):
    # For people who browse the database (`datasette DATABASE_PATH`): one readable row per flag.
    db.executescript(
        """
        CREATE VIEW flag_details AS
        SELECT f.id AS flag_id, f.chat_id, c.title AS chat_title, c.username AS chat_username, f.message_id,
               CASE WHEN c.username IS NOT NULL THEN 'https://t.me/' || c.username || '/' || f.message_id
                    WHEN f.chat_id <= -1000000000000
                    THEN 'https://t.me/c/' || substr(CAST(f.chat_id AS TEXT), 5) || '/' || f.message_id
               END AS link,
               datetime(COALESCE(p.date, f.created_at), 'unixepoch') AS date, f.label, f.score, f.status,
               r.reviewer_name AS reviewed_by, r.reviewer_id AS reviewer_id,
               datetime(r.at, 'unixepoch') AS reviewed_at, f.reasons, p.text, f.model_version,
               datetime(f.created_at, 'unixepoch') AS flagged_at
        FROM flags f
        LEFT JOIN chats c ON c.id = f.chat_id
        LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
        LEFT JOIN reviews r ON r.id = (SELECT MAX(id) FROM reviews WHERE flag_id = f.id);
        """
    )


@migrations()
def m003_flag_rows_view(db: sqlite_utils.Database):
    # Every flag the bot renders (alerts, digest, /recent, export, the scan summary) is read from
    # `flag_rows`, which makes its post link: the one definition of a link. flag_details, for Datasette,
    # becomes a readable projection of it (same columns as before).
    db.execute("CREATE INDEX reviews_flag ON reviews (flag_id)")  # the latest review of a flag, for every row
    db.execute(
        """
        CREATE VIEW flag_rows AS
        SELECT f.*, c.title AS chat_title, c.username AS chat_username, c.type AS chat_type,
               -- A post's link: public chats by username; channels and supergroups (Bot API id
               -- -(10^12 + channel id), the "-100" prefix) by their own id; basic groups and private chats have none.
               CASE WHEN c.username <> '' THEN 'https://t.me/' || c.username || '/' || f.message_id
                    WHEN f.chat_id < -1000000000000
                    THEN 'https://t.me/c/' || (-1000000000000 - f.chat_id) || '/' || f.message_id
               END AS link,
               COALESCE(p.date, f.created_at) AS date, p.text AS text,
               r.reviewer_id, r.reviewer_name, r.at AS reviewed_at
        FROM flags f
        LEFT JOIN chats c ON c.id = f.chat_id
        LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
        LEFT JOIN reviews r ON r.id = (SELECT MAX(id) FROM reviews WHERE flag_id = f.id)
        """
    )
    db.execute("DROP VIEW flag_details")
    db.execute(
        """
        CREATE VIEW flag_details AS
        SELECT id AS flag_id, chat_id, chat_title, chat_username, message_id, link,
               datetime(date, 'unixepoch') AS date, label, score, status,
               reviewer_name AS reviewed_by, reviewer_id, datetime(reviewed_at, 'unixepoch') AS reviewed_at,
               reasons, text, model_version, datetime(created_at, 'unixepoch') AS flagged_at
        FROM flag_rows
        """
    )


@migrations()
def m004_review_callback_query(db: sqlite_utils.Database):
    # A review made with a button names the button press (the callback query) it came from. Telegram delivers
    # an update again when the bot did not confirm it (a restart in between): the same press must not append
    # a second, identical review to the log. One row per press and flag (a press reviews every flag of its
    # alert); reviews from before this step, and any made without a button, have none.
    db.execute("ALTER TABLE reviews ADD COLUMN callback_query_id TEXT")
    db.execute("""CREATE UNIQUE INDEX reviews_callback_query ON reviews (callback_query_id, flag_id)
                  WHERE callback_query_id IS NOT NULL""")


@migrations()
def m007_image_text(db: sqlite_utils.Database):
    # Whether a post's scanned text holds text read from its images (OCR): a moderator weighs a verdict on a
    # picture's text differently, and an export says so. flag_rows gains the column (the rest as m003 made it).
    db.execute("ALTER TABLE posts ADD COLUMN text_from_image INTEGER NOT NULL DEFAULT 0")
    db.execute("DROP VIEW flag_rows")
    db.execute(
        """
        CREATE VIEW flag_rows AS
        SELECT f.*, c.title AS chat_title, c.username AS chat_username, c.type AS chat_type,
               CASE WHEN c.username <> '' THEN 'https://t.me/' || c.username || '/' || f.message_id
                    WHEN f.chat_id < -1000000000000
                    THEN 'https://t.me/c/' || (-1000000000000 - f.chat_id) || '/' || f.message_id
               END AS link,
               COALESCE(p.date, f.created_at) AS date, p.text AS text,
               r.reviewer_id, r.reviewer_name, r.at AS reviewed_at, p.text_from_image AS text_from_image
        FROM flags f
        LEFT JOIN chats c ON c.id = f.chat_id
        LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
        LEFT JOIN reviews r ON r.id = (SELECT MAX(id) FROM reviews WHERE flag_id = f.id)
        """
    )


def text_hash(text: str) -> str:
    """Hash of a text after the normalisation that makes reposts of the same text compare equal."""
    key = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ScanOutcome:
    """What storing a scanned post changed."""

    duplicate: bool = False  # the same text of the same post was already stored
    flag_id: int | None = None
    alert_id: int | None = None
    withdrawn: bool = False  # an edit made a flagged post benign


@dataclass(frozen=True)
class PeriodFigures:
    """What happened in the period (start, end]: the figures the digest, ``compliance-bot stats`` and /stats
    render (:meth:`Storage.period_figures` is the one place they are computed)."""

    start: float
    end: float
    posts_scanned: int  # scans stored in the period: new posts and new texts of edited ones
    flags: int  # flags created in the period, whatever their status now
    by_label: dict[str, int]  # those flags by their label now (a relabelled flag counts under its new label)
    by_status: dict[str, int]  # those flags by their status now
    by_chat: list[dict]  # chat_id, chat_title, flags: per chat, most flags first
    reviews: int  # moderators' decisions taken in the period
    pending: int  # flags waiting for review now, from any period: the review queue
    top: list[dict]  # the period's most probable flags, as flag_rows rows (with their link)


class Storage:
    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    @classmethod
    def open_existing(cls, path: Path | str, **kwargs) -> Storage:
        """Open a database that must already exist (the offline tools never create an empty one by mistake)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no database at {path} (set DATABASE_PATH or pass --db)")
        return cls.open(path, **kwargs)

    @classmethod
    def open(cls, path: Path | str, clock: Callable[[], float] = time.time, timeout: float = 2.0) -> Storage:
        """Open (creating if needed) the database file, switch on WAL and apply pending migrations."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A short busy timeout: a locked file must fail a write quickly rather than stall the event loop.
        conn = sqlite3.connect(str(path), timeout=timeout)
        db = sqlite_utils.Database(conn)
        if str(path) != ":memory:":
            db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
        return cls(db, clock)

    @classmethod
    def open_read_only(cls, path: Path | str) -> Storage:
        """A second, read-only connection to a database this process already opened (and so migrated): it
        reads one WAL snapshot without holding up the writer, and may be used in another thread (sqlite3
        objects must stay in the thread that made them). Close it when done."""
        conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)
        return cls(sqlite_utils.Database(conn))

    def close(self) -> None:
        self.db.close()

    @property
    def path(self) -> str | None:
        """The database file, or None for an in-memory database (which no second connection can open)."""
        main = next((row for row in self.db.query("PRAGMA database_list") if row["name"] == "main"), None)
        return (main["file"] or None) if main else None

    @contextmanager
    def transaction(self) -> Iterator[Storage]:
        """One transaction around several writes: all of them are stored, or (on an error, Ctrl-C included)
        none. Every write method opens one too; inside another they become savepoints. It is sqlite-utils'
        ``atomic``, the one way a transaction is opened here, with one repair: a Ctrl-C that lands just after
        ``db.query`` released its savepoint makes query's own clean-up fail with "no such savepoint"
        (sqlite3.OperationalError, the KeyboardInterrupt as its context). It is raised again as the Ctrl-C
        it is, so that a history scan stops as interrupted (exit 130), not on a "database error"."""
        try:
            with self.db.atomic():
                yield self
        except sqlite3.OperationalError as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise exc.__context__ from None
            raise

    def get_meta(self, key: str) -> str | None:
        row = next(self.db.query("SELECT value FROM meta WHERE key = ?", [key]), None)
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def secret(self) -> bytes:
        """The key that signs callback data; made once and kept, so buttons survive a restart."""
        value = self.get_meta("callback_secret")
        if value is None:
            value = secrets.token_hex(16)
            self.set_meta("callback_secret", value)
        return bytes.fromhex(value)

    # -- chats -------------------------------------------------------------------------------
    def upsert_chat(
        self, chat_id: int, type: str | None, title: str | None, username: str | None, status: str | None = None
    ) -> None:
        now = self.clock()
        with self.transaction():
            self._upsert_chat(chat_id, type, title, username, status, now)

    def _upsert_chat(self, chat_id, type, title, username, status, now) -> None:
        self.db.execute(
            """INSERT INTO chats (id, type, title, username, status, first_seen, updated_at)
               VALUES (?, ?, ?, ?, COALESCE(?, 'seen'), ?, ?)
               ON CONFLICT (id) DO UPDATE SET type = COALESCE(excluded.type, type),
                 title = COALESCE(excluded.title, title), username = excluded.username,
                 status = COALESCE(?, status), updated_at = excluded.updated_at""",
            [chat_id, type, title, username, status, now, now, status],
        )

    def chat(self, chat_id: int) -> dict | None:
        return next(self.db.query("SELECT * FROM chats WHERE id = ?", [chat_id]), None)

    def chats(self) -> list[dict]:
        return list(
            self.db.query(
                """SELECT c.*, (SELECT COUNT(*) FROM flags f WHERE f.chat_id = c.id) AS flags,
                      (SELECT COUNT(*) FROM posts p WHERE p.chat_id = c.id) AS posts
               FROM chats c ORDER BY c.status = 'watched' DESC, c.title"""
            )
        )

    # -- posts and flags -----------------------------------------------------------------------
    def record_scan(self, post: Post, verdict, *, threshold: float, store_benign_text: bool) -> ScanOutcome:
        """Store one scanned post (new or edited) and create, update or withdraw its flag, in one transaction."""
        now = self.clock()
        digest = text_hash(post.text)
        promotion = verdict.is_promotion
        keep_text = post.text if (promotion or store_benign_text) else None
        with self.transaction():
            self._upsert_chat(post.chat_id, post.chat_type, post.chat_title, post.chat_username, None, now)
            # What is stored of this post and its flag, in one read (storing is what sets a history scan's pace).
            old = next(
                self.db.query(
                    """SELECT p.text_hash, p.versions, f.id AS flag_id, f.status, f.alert_id FROM posts p
                   LEFT JOIN flags f ON f.chat_id = p.chat_id AND f.message_id = p.message_id
                   WHERE p.chat_id = ? AND p.message_id = ?""",
                    [post.chat_id, post.message_id],
                ),
                None,
            )
            if old is not None and old["text_hash"] == digest:
                return ScanOutcome(duplicate=True)
            version = 1 if old is None else old["versions"] + 1
            self.db.execute(
                """INSERT INTO posts (chat_id, message_id, date, text, text_hash, label, score, model_version,
                                      versions, scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (chat_id, message_id) DO UPDATE SET text = excluded.text,
                     text_hash = excluded.text_hash, label = excluded.label, score = excluded.score,
                     model_version = excluded.model_version, versions = excluded.versions,
                     scanned_at = excluded.scanned_at""",
                [
                    post.chat_id,
                    post.message_id,
                    post.date,
                    keep_text,
                    digest,
                    verdict.label,
                    verdict.score,
                    verdict.model_version,
                    version,
                    now,
                ],
            )
            self.db.execute(
                """INSERT INTO post_versions (chat_id, message_id, version, seen_at, text, text_hash, label, score)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [post.chat_id, post.message_id, version, now, keep_text, digest, verdict.label, verdict.score],
            )
            if post.from_image or old is not None:  # new posts default to 0; an edit may add or drop its image
                self.db.execute(
                    "UPDATE posts SET text_from_image = ? WHERE chat_id = ? AND message_id = ?",
                    [int(post.from_image), post.chat_id, post.message_id],
                )
            flag = old if old is not None and old["flag_id"] is not None else None
            if not promotion:
                if flag is None or not flag_may(flag["status"], "withdraw"):
                    return ScanOutcome()
                # The flag follows the latest text: an edit to something benign withdraws it.
                self.db.execute(
                    "UPDATE flags SET status = ?, updated_at = ? WHERE id = ?",
                    [flag_transition(flag["status"], "withdraw"), now, flag["flag_id"]],
                )
                self._mark_alert_for_edit(flag["alert_id"])
                return ScanOutcome(flag_id=flag["flag_id"], withdrawn=True)
            fields = [
                verdict.label,
                verdict.score,
                json.dumps(verdict.scores),
                json.dumps([_reason_dict(r) for r in verdict.reasons], ensure_ascii=False),
                verdict.model_version,
                digest,
                now,
            ]
            if flag is None:
                cursor = self.db.execute(
                    """INSERT INTO flags (label, score, scores, reasons, model_version, text_hash, updated_at,
                                          status, chat_id, message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    fields + [flag_transition(None, "flag"), post.chat_id, post.message_id, now],
                )
                flag_id = cursor.lastrowid
            else:
                # A changed text is a new claim: whatever was decided about the old text is reopened.
                flag_id = flag["flag_id"]
                self.db.execute(
                    """UPDATE flags SET label = ?, score = ?, scores = ?, reasons = ?, model_version = ?,
                         text_hash = ?, updated_at = ?, status = ?, alert_id = NULL WHERE id = ?""",
                    fields + [flag_transition(flag["status"], "reopen"), flag_id],
                )
                self._mark_alert_for_edit(flag["alert_id"])
            # A post in a language the model was not trained on waits for the digest: its score means little.
            notify = verdict.score >= threshold and verdict.language_covered
            alert_id = self._attach_alert(flag_id, digest, verdict.label, notify, now)
            return ScanOutcome(flag_id=flag_id, alert_id=alert_id)

    def _attach_alert(self, flag_id: int, digest: str, label: str, notify: bool, now: float) -> int:
        """Join the flag to an unreviewed alert of the same text, so one text in many chats is one alert."""
        alert = next(
            self.db.query(
                """SELECT a.* FROM alerts a WHERE a.text_hash = ? AND a.label = ? AND NOT EXISTS
                 (SELECT 1 FROM flags f WHERE f.alert_id = a.id AND f.status != 'pending')
               ORDER BY a.id DESC LIMIT 1""",
                [digest, label],
            ),
            None,
        )
        if alert is None:
            alert_id = self.db.execute(
                "INSERT INTO alerts (text_hash, label, notify, created_at) VALUES (?, ?, ?, ?)",
                [digest, label, int(notify), now],
            ).lastrowid
        else:
            alert_id = alert["id"]
            if notify and not alert["notify"]:
                self.db.execute("UPDATE alerts SET notify = 1 WHERE id = ?", [alert_id])
            self._mark_alert_for_edit(alert_id)
        self.db.execute("UPDATE flags SET alert_id = ? WHERE id = ?", [alert_id, flag_id])
        return alert_id

    def _mark_alert_for_edit(self, alert_id: int | None) -> None:
        if alert_id is None:
            return
        self.db.execute(
            """UPDATE outbox SET needs_edit = 1 WHERE status = 'sent'
                 AND id = (SELECT outbox_id FROM alerts WHERE id = ?)""",
            [alert_id],
        )

    def alert(self, alert_id: int) -> dict | None:
        return next(self.db.query("SELECT * FROM alerts WHERE id = ?", [alert_id]), None)

    def alert_flags(self, alert_id: int) -> list[dict]:
        """The flags of an alert as flag_rows rows (chat, link, post text), for rendering."""
        return list(self.db.query("SELECT * FROM flag_rows WHERE alert_id = ? ORDER BY id", [alert_id]))

    def last_review(self, alert_id: int) -> dict | None:
        return next(
            self.db.query(
                """SELECT r.* FROM reviews r JOIN flags f ON f.id = r.flag_id WHERE f.alert_id = ?
               ORDER BY r.id DESC LIMIT 1""",
                [alert_id],
            ),
            None,
        )

    def flag(self, flag_id: int) -> dict | None:
        return next(self.db.query("SELECT * FROM flags WHERE id = ?", [flag_id]), None)

    def flag_links(self, flag_ids: Iterable[int]) -> dict[int, str | None]:
        """The post link of each flag (None where Telegram allows none), as flag_rows makes it."""
        ids = list(flag_ids)
        return {
            row["id"]: row["link"]
            for row in self.db.query(f"SELECT id, link FROM flag_rows WHERE id IN ({','.join('?' * len(ids))})", ids)
        }

    def post(self, chat_id: int, message_id: int) -> dict | None:
        return next(
            self.db.query("SELECT * FROM posts WHERE chat_id = ? AND message_id = ?", [chat_id, message_id]), None
        )

    def post_versions(self, chat_id: int, message_id: int) -> list[dict]:
        return list(
            self.db.query(
                "SELECT * FROM post_versions WHERE chat_id = ? AND message_id = ? ORDER BY version",
                [chat_id, message_id],
            )
        )

    # -- reviews -------------------------------------------------------------------------------
    def record_review(
        self,
        alert_id: int,
        decision: str,
        new_label: str | None,
        reviewer_id: int,
        reviewer_name: str | None,
        *,
        callback_query_id: str | None = None,
    ) -> int:
        """Apply a moderator's decision (one of REVIEW_DECISIONS) to every flag of an alert that may take it
        (all but withdrawn ones); returns how many flags it touched.

        ``callback_query_id`` names the button press the decision comes from: a press is recorded once, and
        the same press again raises ReviewAlreadyRecorded and changes nothing."""
        if decision not in REVIEW_DECISIONS:
            raise IllegalTransition(f"not a review decision: {decision!r}")
        reviewable = sorted(FLAG_TRANSITIONS[decision][0])
        now = self.clock()
        with self.transaction():
            if callback_query_id is not None:
                recorded = next(
                    self.db.query(
                        "SELECT decision FROM reviews WHERE callback_query_id = ? ORDER BY id LIMIT 1",
                        [callback_query_id],
                    ),
                    None,
                )
                if recorded is not None:
                    raise ReviewAlreadyRecorded(callback_query_id, recorded["decision"])
            flags = list(
                self.db.query(
                    f"SELECT * FROM flags WHERE alert_id = ? AND status IN ({','.join('?' * len(reviewable))})",
                    [alert_id, *reviewable],
                )
            )
            for flag in flags:
                label = new_label if decision == "relabel" else flag["label"]
                row = {
                    "flag_id": flag["id"],
                    "reviewer_id": reviewer_id,
                    "reviewer_name": reviewer_name,
                    "decision": decision,
                    "old_label": flag["label"],
                    "new_label": label,
                    "at": now,
                }
                if callback_query_id is not None:
                    row["callback_query_id"] = callback_query_id
                self.db.execute(
                    f"INSERT INTO reviews ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
                )
                self.db.execute(
                    "UPDATE flags SET status = ?, label = ?, updated_at = ? WHERE id = ?",
                    [flag_transition(flag["status"], decision), label, now, flag["id"]],
                )
            if decision == "relabel" and flags:
                self.db.execute("UPDATE alerts SET label = ? WHERE id = ?", [new_label, alert_id])
            self._mark_alert_for_edit(alert_id)
        return len(flags)

    def reviews(self, flag_id: int | None = None) -> list[dict]:
        if flag_id is None:
            return list(self.db.query("SELECT * FROM reviews ORDER BY id"))
        return list(self.db.query("SELECT * FROM reviews WHERE flag_id = ? ORDER BY id", [flag_id]))

    # -- outbox --------------------------------------------------------------------------------
    def queue_message(self, kind: str, chat_id: int, text: str) -> int:
        now = self.clock()
        with self.transaction():
            return self.db.execute(
                "INSERT INTO outbox (kind, chat_id, text, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
                [kind, chat_id, text, now, now],
            ).lastrowid

    def unsent_alerts(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM alerts WHERE notify = 1 AND outbox_id IS NULL ORDER BY id"))

    def pack_alerts(self, chat_id: int, groups: list[list[int]]) -> list[int]:
        """Give each group of alert ids one outbox message to `chat_id`."""
        now = self.clock()
        ids = []
        with self.transaction():
            for group in groups:
                outbox_id = self.db.execute(
                    "INSERT INTO outbox (kind, chat_id, next_attempt_at, created_at) VALUES ('alert', ?, ?, ?)",
                    [chat_id, now, now],
                ).lastrowid
                self.db.execute(
                    f"UPDATE alerts SET outbox_id = ? WHERE id IN ({','.join('?' * len(group))})",
                    [outbox_id, *group],
                )
                ids.append(outbox_id)
        return ids

    def outbox_alerts(self, outbox_id: int) -> list[dict]:
        return list(self.db.query("SELECT * FROM alerts WHERE outbox_id = ? ORDER BY id", [outbox_id]))

    def outbox_row(self, outbox_id: int) -> dict | None:
        return next(self.db.query("SELECT * FROM outbox WHERE id = ?", [outbox_id]), None)

    def due_messages(self, now: float | None = None) -> list[dict]:
        now = self.clock() if now is None else now
        return list(
            self.db.query("SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id", [now])
        )

    def pending_messages(self, chat_id: int) -> int:
        return next(
            self.db.query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND chat_id = ?", [chat_id])
        )["n"]

    def sent_since(self, chat_id: int, since: float) -> int:
        return next(
            self.db.query(
                "SELECT COUNT(*) AS n FROM outbox WHERE chat_id = ? AND status = 'sent' AND sent_at > ?",
                [chat_id, since],
            )
        )["n"]

    def mark_sent(self, outbox_id: int, message_id: int) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE outbox SET status = 'sent', message_id = ?, sent_at = ?, needs_edit = 0 WHERE id = ?",
                [message_id, self.clock(), outbox_id],
            )

    def defer(self, outbox_id: int, delay: float, error: str) -> None:
        with self.transaction():
            self.db.execute(
                """UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?""",
                [self.clock() + delay, error[:500], outbox_id],
            )

    def messages_to_edit(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM outbox WHERE status = 'sent' AND needs_edit = 1 ORDER BY id"))

    def edited(self, outbox_id: int) -> None:
        with self.transaction():
            self.db.execute("UPDATE outbox SET needs_edit = 0 WHERE id = ?", [outbox_id])

    # -- queries for commands and digests --------------------------------------------------------
    def recent_flags(self, limit: int) -> list[dict]:
        return list(self.db.query("SELECT * FROM flag_rows ORDER BY id DESC LIMIT ?", [limit]))

    def pending_alerts(self, limit: int) -> list[dict]:
        """Alerts that still have a pending flag, highest probability first."""
        return list(
            self.db.query(
                """SELECT a.id, a.label, MAX(f.score) AS score, COUNT(*) AS flags FROM alerts a
               JOIN flags f ON f.alert_id = a.id WHERE f.status = 'pending'
               GROUP BY a.id ORDER BY score DESC, a.id LIMIT ?""",
                [limit],
            )
        )

    def count_pending_flags(self) -> int:
        return next(self.db.query("SELECT COUNT(*) AS n FROM flags WHERE status = 'pending'"))["n"]

    def period_figures(self, start: float, end: float, top: int = 5) -> PeriodFigures:
        """The figures of the period (start, end], for the digest, ``compliance-bot stats`` and /stats alike."""
        period = [start, end]
        by_label: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for row in self.db.query(
            """SELECT label, status, COUNT(*) AS n FROM flags
                                    WHERE created_at > ? AND created_at <= ? GROUP BY label, status""",
            period,
        ):
            by_label[row["label"]] = by_label.get(row["label"], 0) + row["n"]
            by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        # Per chat id, not per title: two chats may have the same title.
        by_chat = list(
            self.db.query(
                """SELECT chat_id, chat_title, COUNT(*) AS flags FROM flag_rows
               WHERE created_at > ? AND created_at <= ? GROUP BY chat_id
               ORDER BY flags DESC, MAX(score) DESC, MIN(id)""",
                period,
            )
        )
        return PeriodFigures(
            start=start,
            end=end,
            posts_scanned=next(
                self.db.query("SELECT COUNT(*) AS n FROM post_versions WHERE seen_at > ? AND seen_at <= ?", period)
            )["n"],
            flags=sum(by_label.values()),
            by_label=by_label,
            by_status=by_status,
            by_chat=by_chat,
            reviews=next(self.db.query("SELECT COUNT(*) AS n FROM reviews WHERE at > ? AND at <= ?", period))["n"],
            pending=self.count_pending_flags(),
            top=list(
                self.db.query(
                    """SELECT * FROM flag_rows WHERE created_at > ? AND created_at <= ?
                                      ORDER BY score DESC, id LIMIT ?""",
                    [*period, top],
                )
            ),
        )

    def all_flags(self) -> list[dict]:
        return list(self.iter_flag_details())

    def reviewed_flags(self) -> list[dict]:
        """The latest review of every flag that stands reviewed now, with its post's text, oldest review
        first. A flag reopened by an edit (status pending again) is left out: its review was of another text."""
        reviewed = sorted(_REVIEWED)
        return list(
            self.db.query(
                f"""SELECT r.id AS review_id, r.flag_id, r.decision, r.old_label, r.new_label, r.at, r.reviewer_id,
                      f.chat_id, f.message_id, f.status, p.text AS text FROM reviews r
               JOIN flags f ON f.id = r.flag_id
               LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
               WHERE r.id = (SELECT MAX(id) FROM reviews WHERE flag_id = r.flag_id)
                 AND f.status IN ({",".join("?" * len(reviewed))})
               ORDER BY r.at, r.id""",
                reviewed,
            )
        )

    def iter_flag_details(
        self, statuses: Iterable[str] = (), labels: Iterable[str] = (), since: float | None = None
    ) -> Iterator[dict]:
        """Flags as flag_rows rows (chat, link, post date and text, latest review), oldest first, read as
        they are written out. ``since`` filters on the post's date (the flag's, for a post without one)."""
        where, params = [], []
        statuses, labels = list(statuses), list(labels)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params += statuses
        if labels:
            where.append(f"label IN ({','.join('?' * len(labels))})")
            params += labels
        if since is not None:
            where.append("date >= ?")
            params.append(since)
        return self.db.query(
            f"SELECT * FROM flag_rows {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id", params
        )

    def last_digest(self) -> dict | None:
        return next(self.db.query("SELECT * FROM digests ORDER BY id DESC LIMIT 1"), None)

    def record_digest(self, start: float, end: float, flags: int, chat_id: int, text: str) -> int:
        """Queue a digest and remember its period, in one transaction so a crash cannot send it twice."""
        with self.transaction():
            outbox_id = self.db.execute(
                "INSERT INTO outbox (kind, chat_id, text, next_attempt_at, created_at) VALUES ('digest', ?, ?, ?, ?)",
                [chat_id, text, end, end],
            ).lastrowid
            self.db.execute(
                "INSERT INTO digests (period_start, period_end, flags, outbox_id) VALUES (?, ?, ?, ?)",
                [start, end, flags, outbox_id],
            )
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('digest_period_end', ?)", [repr(end)])
        return outbox_id


def _reason_dict(reason) -> dict:
    return {"kind": reason.kind, "feature": reason.feature, "weight": round(float(reason.weight), 4)}
