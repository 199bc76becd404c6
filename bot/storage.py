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

from bot.actors import store_actors
from bot.flag_lifecycle import (
    FLAG_TRANSITIONS,
    REVIEW_DECISIONS,
    REVIEWED_STATUSES,
    IllegalTransition,
    flag_may,
    flag_transition,
)
from bot.post import Post


class ReviewAlreadyRecorded(Exception):
    """A review for a button press (callback query) that is already in the review log: Telegram delivered
    the same press again. ``decision`` is the one recorded for it."""

    def __init__(self, callback_query_id: str, decision: str):
        super().__init__(f"the review of callback query {callback_query_id!r} is already recorded ({decision})")
        self.callback_query_id, self.decision = callback_query_id, decision


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
def m005_web_preview(db: sqlite_utils.Database):
    # Public channels read through their web preview (t.me/s/NAME; bot/watched_channels.py). A chat records
    # where it was seen from. A web channel is keyed by its Bot API id when its page shows the channel's
    # numeric id, or when the Bot API already knows the username; otherwise by a stable id made from the
    # username, below every Bot API id (bot.watched_channels.web_chat_id). When the Bot API later shows
    # that username under its real id, the trigger moves the channel's posts and flags there: one row per post.
    db.executescript(
        """
        ALTER TABLE chats ADD COLUMN source TEXT NOT NULL DEFAULT 'bot_api';
        CREATE TABLE web_channels (
            username TEXT PRIMARY KEY COLLATE NOCASE, chat_id INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',  -- active, gone (no such channel), private (no public post list)
            last_post_id INTEGER, added_at REAL NOT NULL, added_by TEXT,
            polled_at REAL, problem TEXT, problem_at REAL, last_error TEXT
        );
        CREATE INDEX chats_username ON chats (username COLLATE NOCASE);
        CREATE TRIGGER chats_web_preview_merge AFTER INSERT ON chats
        WHEN NEW.username IS NOT NULL AND NEW.id > -1000000000000000 AND EXISTS
            (SELECT 1 FROM chats WHERE id <= -1000000000000000 AND username = NEW.username COLLATE NOCASE)
        BEGIN
            UPDATE posts SET chat_id = NEW.id WHERE chat_id =
                (SELECT id FROM chats WHERE id <= -1000000000000000 AND username = NEW.username COLLATE NOCASE);
            UPDATE post_versions SET chat_id = NEW.id WHERE chat_id =
                (SELECT id FROM chats WHERE id <= -1000000000000000 AND username = NEW.username COLLATE NOCASE);
            UPDATE flags SET chat_id = NEW.id WHERE chat_id =
                (SELECT id FROM chats WHERE id <= -1000000000000000 AND username = NEW.username COLLATE NOCASE);
            UPDATE web_channels SET chat_id = NEW.id WHERE chat_id =
                (SELECT id FROM chats WHERE id <= -1000000000000000 AND username = NEW.username COLLATE NOCASE);
            UPDATE chats SET source = CASE WHEN NEW.source = 'web_preview' THEN 'web_preview'
                                           ELSE 'bot_api+web_preview' END,
                             status = CASE WHEN NEW.status = 'seen' THEN
                                 (SELECT status FROM chats WHERE id <= -1000000000000000
                                  AND username = NEW.username COLLATE NOCASE) ELSE NEW.status END,
                             title = COALESCE(NEW.title,
                                 (SELECT title FROM chats WHERE id <= -1000000000000000
                                  AND username = NEW.username COLLATE NOCASE))
                WHERE id = NEW.id;
            DELETE FROM chats WHERE id <= -1000000000000000 AND username = NEW.username COLLATE NOCASE;
        END;
        """
    )


@migrations()
def m006_platform_watchlist(db: sqlite_utils.Database):
    # The listed platforms (`compliance-bot watchlist`), seeded once with the bundled list: removing every
    # platform leaves the list empty, it is not seeded again. Domains and aliases are JSON lists. Posts and
    # flags record the listed platforms their text names or links (a JSON list of names, NULL for none); the
    # flag_rows view shows it with every flag (its f.*), flag_details keeps its columns.
    from classifier import default_platforms

    db.executescript(
        """
        CREATE TABLE watchlist (
            name TEXT PRIMARY KEY COLLATE NOCASE, domains TEXT NOT NULL, aliases TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '', source TEXT, updated_at REAL NOT NULL
        );
        ALTER TABLE posts ADD COLUMN watchlist TEXT;
        ALTER TABLE flags ADD COLUMN watchlist TEXT;
        -- One row per post and listed platform it names or links, for Datasette's facets.
        CREATE VIEW platform_posts AS
        SELECT j.value AS platform, p.chat_id, c.title AS chat_title, p.message_id,
               datetime(COALESCE(p.date, p.scanned_at), 'unixepoch') AS date, p.label, p.score, p.text
        FROM posts p JOIN json_each(p.watchlist) j LEFT JOIN chats c ON c.id = p.chat_id
        WHERE p.watchlist IS NOT NULL;
        """
    )
    now = time.time()
    db.conn.executemany(
        "INSERT INTO watchlist (name, domains, aliases, note, source, updated_at) VALUES (?, ?, ?, ?, 'bundled', ?)",
        [
            (p.name, json.dumps(p.domains), json.dumps(p.aliases, ensure_ascii=False), p.note, now)
            for p in default_platforms()
        ],
    )


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


@migrations()
def m008_actors_and_actions(db: sqlite_utils.Database):
    # Issue 15. Who made each post (bot/actors.py), what moderators and the bot did about a flag (delete the
    # post, ban the sender: bot/action_log.py), and the chats where flagged posts are deleted automatically
    # (bot/autodelete.py).
    db.executescript(
        """
        CREATE TABLE post_actors (
            chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL, sender_kind TEXT NOT NULL,
            user_id INTEGER, username TEXT, user_name TEXT,
            sender_chat_id INTEGER, sender_chat_title TEXT, sender_chat_username TEXT,
            forward_chat_id INTEGER, forward_chat_title TEXT, forward_chat_username TEXT,
            PRIMARY KEY (chat_id, message_id)
        );
        CREATE INDEX post_actors_user ON post_actors (user_id) WHERE user_id IS NOT NULL;
        CREATE INDEX post_actors_sender_chat ON post_actors (sender_chat_id) WHERE sender_chat_id IS NOT NULL;
        CREATE INDEX post_actors_forward_chat ON post_actors (forward_chat_id) WHERE forward_chat_id IS NOT NULL;
        -- Actions on flagged posts and their outcome; actor_id NULL is the bot itself (automatic deletion).
        -- Evidence like the reviews: it only grows.
        CREATE TABLE moderation_actions (
            id INTEGER PRIMARY KEY, flag_id INTEGER NOT NULL REFERENCES flags(id), alert_id INTEGER,
            chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL, action TEXT NOT NULL,
            target_user_id INTEGER, target_chat_id INTEGER, actor_id INTEGER, actor_name TEXT,
            outcome TEXT NOT NULL, telegram_answer TEXT, callback_query_id TEXT, at REAL NOT NULL
        );
        CREATE INDEX moderation_actions_flag ON moderation_actions (flag_id);
        CREATE UNIQUE INDEX moderation_actions_query ON moderation_actions (callback_query_id)
            WHERE callback_query_id IS NOT NULL;
        CREATE TRIGGER moderation_actions_no_update BEFORE UPDATE ON moderation_actions
            BEGIN SELECT RAISE(ABORT, 'moderation actions are append-only'); END;
        CREATE TRIGGER moderation_actions_no_delete BEFORE DELETE ON moderation_actions
            BEGIN SELECT RAISE(ABORT, 'moderation actions are append-only'); END;
        CREATE TABLE autodelete_chats (
            chat_id INTEGER PRIMARY KEY, threshold REAL NOT NULL, dry_run INTEGER NOT NULL,
            set_by INTEGER, set_at REAL NOT NULL
        );
        -- One row per confirmed (or relabelled) flag and actor: the user who sent it, the channel it was posted
        -- as, the channel it was forwarded from. /offenders and `compliance-bot offenders` rank these.
        CREATE VIEW offender_flags AS
        -- Not materialised: /offenders and each alert's history line ask for one actor, which SQLite then finds
        -- through the post_actors indexes instead of reading every confirmed flag.
        WITH confirmed AS NOT MATERIALIZED (
            SELECT f.id AS flag_id, f.alert_id, f.chat_id, f.label, COALESCE(p.date, f.created_at) AS seen,
                   a.user_id, a.username, a.user_name, a.sender_chat_id, a.sender_chat_username,
                   a.sender_chat_title, a.forward_chat_id, a.forward_chat_username, a.forward_chat_title
            FROM flags f JOIN post_actors a ON a.chat_id = f.chat_id AND a.message_id = f.message_id
            LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
            WHERE f.status IN ('confirmed', 'relabelled')
        )
        SELECT 'user' AS kind, 'sender' AS role, user_id AS actor_id, username, user_name AS name,
               flag_id, alert_id, chat_id, label, seen FROM confirmed WHERE user_id IS NOT NULL
        UNION ALL
        SELECT 'channel', 'sender', sender_chat_id, sender_chat_username, sender_chat_title,
               flag_id, alert_id, chat_id, label, seen FROM confirmed WHERE sender_chat_id IS NOT NULL
        UNION ALL
        SELECT 'channel', 'forwarded_from', forward_chat_id, forward_chat_username, forward_chat_title,
               flag_id, alert_id, chat_id, label, seen FROM confirmed WHERE forward_chat_id IS NOT NULL;
        -- For Datasette: every action with its post's chat and link, newest first.
        CREATE VIEW moderation_log AS
        SELECT m.id, datetime(m.at, 'unixepoch') AS at, m.action, m.outcome, m.telegram_answer,
               COALESCE(m.actor_name, 'bot') AS actor, m.actor_id, m.chat_id, r.chat_title, m.message_id, r.link,
               m.target_user_id, m.target_chat_id, m.flag_id, m.alert_id, r.label, r.score
        FROM moderation_actions m LEFT JOIN flag_rows r ON r.id = m.flag_id ORDER BY m.id DESC;
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
    # Per listed platform: platform, posts (scanned in the period that name or link it), flagged (of those).
    by_platform: tuple = ()


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
            # The listed platforms the text names or links (issue 11); an edit may drop them.
            platforms = _platforms_json(verdict)
            if platforms is not None or old is not None:
                self.db.execute(
                    "UPDATE posts SET watchlist = ? WHERE chat_id = ? AND message_id = ?",
                    [platforms, post.chat_id, post.message_id],
                )
            store_actors(self.db, post.chat_id, post.message_id, post.actors, keep=keep_text is not None)
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
            if platforms is not None or flag is not None:
                self.db.execute("UPDATE flags SET watchlist = ? WHERE id = ?", [platforms, flag_id])
            alert_id = self._attach_alert(flag_id, digest, verdict.label, _notifies(verdict, threshold), now)
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

    # -- storing a batch of scans (history scans, bulk-scan --into-db) ---------------------------
    def record_scans(self, scans: Iterable[tuple[Post, object]], *, threshold: float, store_benign_text: bool):
        """Store many scanned posts in one transaction, with what :meth:`record_scan` stores one after another,
        in a few ``executemany`` statements a batch instead of about nine a post (storing sets the pace of a
        history scan). New posts and posts already stored with the same text take the batch path; an edit,
        or a post met twice in the batch, goes through :meth:`record_scan` in its turn. Returns one
        :class:`ScanOutcome` a scan, in order."""
        now = self.clock()
        with self.transaction():
            scans = list(scans)
            outcomes: list[ScanOutcome | None] = [None] * len(scans)
            # The first write takes SQLite's write lock, so the flag and alert ids counted below stay free.
            self._upsert_chats([post for post, _ in scans], now)
            stored = self._stored_hashes([(post.chat_id, post.message_id) for post, _ in scans])
            fresh: list[tuple[int, Post, object, str]] = []
            seen: set[tuple[int, int]] = set()
            for i, (post, verdict) in enumerate(scans):
                key = (post.chat_id, post.message_id)
                digest = text_hash(post.text)
                if key in seen or (key in stored and stored[key] != digest):
                    self._store_fresh(fresh, outcomes, threshold, store_benign_text, now)
                    outcomes[i] = self.record_scan(
                        post, verdict, threshold=threshold, store_benign_text=store_benign_text
                    )
                elif key in stored:
                    outcomes[i] = ScanOutcome(duplicate=True)
                else:
                    fresh.append((i, post, verdict, digest))
                seen.add(key)
            self._store_fresh(fresh, outcomes, threshold, store_benign_text, now)
        return outcomes

    def _upsert_chats(self, posts: list[Post], now: float) -> None:
        """Each chat once, as upserting it for every post in turn would leave it (the last title and type given)."""
        merged: dict[int, list] = {}
        for post in posts:
            row = merged.setdefault(post.chat_id, [post.chat_id, None, None, None, now, now])
            row[1] = post.chat_type or row[1]
            row[2] = post.chat_title or row[2]
            row[3] = post.chat_username
        self.db.conn.executemany(
            """INSERT INTO chats (id, type, title, username, status, first_seen, updated_at)
               VALUES (?, ?, ?, ?, 'seen', ?, ?)
               ON CONFLICT (id) DO UPDATE SET type = COALESCE(excluded.type, type),
                 title = COALESCE(excluded.title, title), username = excluded.username,
                 updated_at = excluded.updated_at""",
            list(merged.values()),
        )

    def _stored_hashes(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """The text hash stored for each (chat id, message id) that is stored."""
        by_chat: dict[int, list[int]] = {}
        for chat_id, message_id in dict.fromkeys(keys):
            by_chat.setdefault(chat_id, []).append(message_id)
        found = {}
        for chat_id, message_ids in by_chat.items():
            for start in range(0, len(message_ids), _KEYS_PER_QUERY):
                chunk = message_ids[start : start + _KEYS_PER_QUERY]
                # One chat a query: `(chat_id, message_id) IN (VALUES …)` would scan the whole table.
                for message_id, digest in self.db.execute(
                    f"""SELECT message_id, text_hash FROM posts
                        WHERE chat_id = ? AND message_id IN ({",".join("?" * len(chunk))})""",
                    [chat_id, *chunk],
                ):
                    found[(chat_id, message_id)] = digest
        return found

    def _store_fresh(self, fresh: list, outcomes: list, threshold: float, store_benign_text: bool, now: float) -> None:
        """Store posts never stored before (and their flags and alerts) at once; empties ``fresh``."""
        if not fresh:
            return
        flagged = [(i, post, verdict, digest) for i, post, verdict, digest in fresh if verdict.is_promotion]
        alerts = self._alerts_for([(digest, verdict.label) for _, _, verdict, digest in flagged])
        next_flag = self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM flags").fetchone()[0]
        next_alert = self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM alerts").fetchone()[0]
        new_alerts: dict[tuple[str, str], list] = {}
        joined: dict[int, bool] = {}  # existing alerts joined: whether one of their new flags notifies
        flag_rows, flag_of = [], {}
        for i, post, verdict, digest in flagged:
            notify = _notifies(verdict, threshold)
            pair = (digest, verdict.label)
            if pair in alerts:
                alert_id = alerts[pair]
                joined[alert_id] = joined.get(alert_id, False) or notify
            elif pair in new_alerts:
                alert_id = new_alerts[pair][0]
                new_alerts[pair][3] = new_alerts[pair][3] or int(notify)
            else:
                alert_id = next_alert
                next_alert += 1
                new_alerts[pair] = [alert_id, digest, verdict.label, int(notify), now]
            flag_rows.append(
                [
                    next_flag,
                    post.chat_id,
                    post.message_id,
                    verdict.label,
                    verdict.score,
                    json.dumps(verdict.scores),
                    json.dumps([_reason_dict(r) for r in verdict.reasons], ensure_ascii=False),
                    verdict.model_version,
                    flag_transition(None, "flag"),
                    alert_id,
                    digest,
                    now,
                    now,
                    _platforms_json(verdict),
                ]
            )
            flag_of[i] = (next_flag, alert_id)
            next_flag += 1
        conn = self.db.conn
        conn.executemany(
            "INSERT INTO alerts (id, text_hash, label, notify, created_at) VALUES (?, ?, ?, ?, ?)",
            list(new_alerts.values()),
        )
        for alert_id, notify in joined.items():
            if notify:
                self.db.execute("UPDATE alerts SET notify = 1 WHERE id = ? AND notify = 0", [alert_id])
            self._mark_alert_for_edit(alert_id)
        conn.executemany(
            """INSERT INTO posts (chat_id, message_id, date, text, text_hash, label, score, model_version,
                                  versions, scanned_at, watchlist, text_from_image)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)""",
            [
                [
                    post.chat_id,
                    post.message_id,
                    post.date,
                    post.text if (verdict.is_promotion or store_benign_text) else None,
                    digest,
                    verdict.label,
                    verdict.score,
                    verdict.model_version,
                    now,
                    _platforms_json(verdict),
                    int(post.from_image),
                ]
                for _, post, verdict, digest in fresh
            ],
        )
        conn.executemany(
            """INSERT INTO post_versions (chat_id, message_id, version, seen_at, text, text_hash, label, score)
               VALUES (?, ?, 1, ?, ?, ?, ?, ?)""",
            [
                [
                    post.chat_id,
                    post.message_id,
                    now,
                    post.text if (verdict.is_promotion or store_benign_text) else None,
                    digest,
                    verdict.label,
                    verdict.score,
                ]
                for _, post, verdict, digest in fresh
            ],
        )
        conn.executemany(
            """INSERT INTO flags (id, chat_id, message_id, label, score, scores, reasons, model_version, status,
                                  alert_id, text_hash, created_at, updated_at, watchlist)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            flag_rows,
        )
        for _, post, verdict, _ in fresh:
            if post.actors is not None:
                store_actors(
                    self.db, post.chat_id, post.message_id, post.actors, keep=verdict.is_promotion or store_benign_text
                )
        for i, *_ in fresh:
            flag_id, alert_id = flag_of.get(i, (None, None))
            outcomes[i] = ScanOutcome(flag_id=flag_id, alert_id=alert_id)
        fresh.clear()

    def _alerts_for(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """For each (text hash, label), the newest alert a new flag of it joins (see :meth:`_attach_alert`)."""
        found: dict[tuple[str, str], int] = {}
        wanted = set(pairs)
        hashes = list({digest for digest, _ in wanted})
        for start in range(0, len(hashes), _KEYS_PER_QUERY):
            chunk = hashes[start : start + _KEYS_PER_QUERY]
            for alert_id, digest, label in self.db.execute(
                f"""SELECT a.id, a.text_hash, a.label FROM alerts a WHERE a.text_hash IN ({",".join("?" * len(chunk))})
                      AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.alert_id = a.id AND f.status != 'pending')
                    ORDER BY a.id""",
                chunk,
            ):
                if (digest, label) in wanted:
                    found[(digest, label)] = alert_id
        return found

    def mark_alert_for_edit(self, alert_id: int | None) -> None:
        """Have the outbox render a sent alert again (an action on one of its flags changed what it shows)."""
        with self.transaction():
            self._mark_alert_for_edit(alert_id)

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
            by_platform=tuple(
                self.db.query(
                    """SELECT j.value AS platform, COUNT(*) AS posts, SUM(p.label != 'benign') AS flagged
                       FROM posts p JOIN json_each(p.watchlist) j
                       WHERE p.watchlist IS NOT NULL AND p.scanned_at > ? AND p.scanned_at <= ?
                       GROUP BY j.value ORDER BY posts DESC, platform""",
                    period,
                )
            ),
        )

    def all_flags(self) -> list[dict]:
        return list(self.iter_flag_details())

    def reviewed_flags(self) -> list[dict]:
        """The latest review of every flag that stands reviewed now, with its post's text, oldest review
        first. A flag reopened by an edit (status pending again) is left out: its review was of another text."""
        reviewed = sorted(REVIEWED_STATUSES)
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


# (chat id, message id) pairs or text hashes a query reads at once: SQLite before 3.32 allows 999 parameters.
_KEYS_PER_QUERY = 400


def _notifies(verdict, threshold: float) -> bool:
    """Whether a flag alerts at once. A post in a language the model was not trained on waits for the digest:
    its score means little. A look-alike or mirror of a listed platform alerts at once whatever the model's
    score, unless nothing may (history scans pass an infinite threshold)."""
    return (verdict.score >= threshold and verdict.language_covered) or (
        getattr(verdict, "watchlist_flagged", False) and threshold <= 1.0
    )


def _platforms_json(verdict) -> str | None:
    """The listed platforms of a verdict as stored (a JSON list of names), None for none."""
    names = getattr(verdict, "platforms", None)
    return json.dumps(names, ensure_ascii=False) if names else None


def _reason_dict(reason) -> dict:
    return {"kind": reason.kind, "feature": reason.feature, "weight": round(float(reason.weight), 4)}
