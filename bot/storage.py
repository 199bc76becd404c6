"""Everything the bot keeps in SQLite: chats, posts and their edits, flags, reviews, alerts, outbox.

One :class:`Storage` owns one connection and is used from the event-loop thread only. Every write is
one transaction, so a locked or read-only file fails a write whole and leaves what is stored intact.
Times are UTC epoch seconds (floats); the clock is injectable for tests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from bot.post import Post

FLAG_STATUSES = ("pending", "confirmed", "false_positive", "relabelled", "withdrawn")
# What a press of a review button does: decision name, flag status it leads to.
DECISIONS = {"confirm": "confirmed", "false_positive": "false_positive", "relabel": "relabelled"}

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


class Storage:
    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    @classmethod
    def open_existing(cls, path: Path | str, **kwargs) -> "Storage":
        """Open a database that must already exist (the offline tools never create an empty one by mistake)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no database at {path} (set DATABASE_PATH or pass --db)")
        return cls.open(path, **kwargs)

    @classmethod
    def open(cls, path: Path | str, clock: Callable[[], float] = time.time, timeout: float = 2.0) -> "Storage":
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

    def close(self) -> None:
        self.db.close()

    # -- helpers -----------------------------------------------------------------------------
    def _one(self, sql: str, params: Iterable = ()) -> dict | None:
        cursor = self.db.execute(sql, list(params))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row))

    def _all(self, sql: str, params: Iterable = ()) -> list[dict]:
        cursor = self.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", [key])
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.atomic():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def secret(self) -> bytes:
        """The key that signs callback data; made once and kept, so buttons survive a restart."""
        value = self.get_meta("callback_secret")
        if value is None:
            value = secrets.token_hex(16)
            self.set_meta("callback_secret", value)
        return bytes.fromhex(value)

    # -- chats -------------------------------------------------------------------------------
    def upsert_chat(self, chat_id: int, type: str | None, title: str | None, username: str | None,
                    status: str | None = None) -> None:
        now = self.clock()
        with self.db.atomic():
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
        return self._one("SELECT * FROM chats WHERE id = ?", [chat_id])

    def chats(self) -> list[dict]:
        return self._all(
            """SELECT c.*, (SELECT COUNT(*) FROM flags f WHERE f.chat_id = c.id) AS flags,
                      (SELECT COUNT(*) FROM posts p WHERE p.chat_id = c.id) AS posts
               FROM chats c ORDER BY c.status = 'watched' DESC, c.title"""
        )

    # -- posts and flags -----------------------------------------------------------------------
    def record_scan(self, post: Post, verdict, *, threshold: float, store_benign_text: bool) -> ScanOutcome:
        """Store one scanned post (new or edited) and create, update or withdraw its flag, in one transaction."""
        now = self.clock()
        digest = text_hash(post.text)
        promotion = verdict.is_promotion
        keep_text = post.text if (promotion or store_benign_text) else None
        with self.db.atomic():
            self._upsert_chat(post.chat_id, post.chat_type, post.chat_title, post.chat_username, None, now)
            old = self._one("SELECT * FROM posts WHERE chat_id = ? AND message_id = ?", [post.chat_id, post.message_id])
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
                [post.chat_id, post.message_id, post.date, keep_text, digest, verdict.label, verdict.score,
                 verdict.model_version, version, now],
            )
            self.db.execute(
                """INSERT INTO post_versions (chat_id, message_id, version, seen_at, text, text_hash, label, score)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [post.chat_id, post.message_id, version, now, keep_text, digest, verdict.label, verdict.score],
            )
            flag = self._one("SELECT * FROM flags WHERE chat_id = ? AND message_id = ?", [post.chat_id, post.message_id])
            if not promotion:
                if flag is None or flag["status"] == "withdrawn":
                    return ScanOutcome()
                # The flag follows the latest text: an edit to something benign withdraws it.
                self.db.execute("UPDATE flags SET status = 'withdrawn', updated_at = ? WHERE id = ?", [now, flag["id"]])
                self._mark_alert_for_edit(flag["alert_id"])
                return ScanOutcome(flag_id=flag["id"], withdrawn=True)
            fields = [verdict.label, verdict.score, json.dumps(verdict.scores),
                      json.dumps([_reason_dict(r) for r in verdict.reasons], ensure_ascii=False),
                      verdict.model_version, digest, now]
            if flag is None:
                cursor = self.db.execute(
                    """INSERT INTO flags (label, score, scores, reasons, model_version, text_hash, updated_at,
                                          chat_id, message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    fields + [post.chat_id, post.message_id, now],
                )
                flag_id = cursor.lastrowid
            else:
                # A changed text is a new claim: whatever was decided about the old text is reopened.
                flag_id = flag["id"]
                self.db.execute(
                    """UPDATE flags SET label = ?, score = ?, scores = ?, reasons = ?, model_version = ?,
                         text_hash = ?, updated_at = ?, status = 'pending', alert_id = NULL WHERE id = ?""",
                    fields + [flag_id],
                )
                self._mark_alert_for_edit(flag["alert_id"])
            # A post in a language the model was not trained on waits for the digest: its score means little.
            notify = verdict.score >= threshold and verdict.language_covered
            alert_id = self._attach_alert(flag_id, digest, verdict.label, notify, now)
            return ScanOutcome(flag_id=flag_id, alert_id=alert_id)

    def _attach_alert(self, flag_id: int, digest: str, label: str, notify: bool, now: float) -> int:
        """Join the flag to an unreviewed alert of the same text, so one text in many chats is one alert."""
        alert = self._one(
            """SELECT a.* FROM alerts a WHERE a.text_hash = ? AND a.label = ? AND NOT EXISTS
                 (SELECT 1 FROM flags f WHERE f.alert_id = a.id AND f.status != 'pending')
               ORDER BY a.id DESC LIMIT 1""",
            [digest, label],
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
        return self._one("SELECT * FROM alerts WHERE id = ?", [alert_id])

    def alert_flags(self, alert_id: int) -> list[dict]:
        """The flags of an alert with their chat and post text, for rendering."""
        return self._all(
            """SELECT f.*, c.title AS chat_title, c.username AS chat_username, c.type AS chat_type,
                      p.text AS text FROM flags f
               LEFT JOIN chats c ON c.id = f.chat_id
               LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
               WHERE f.alert_id = ? ORDER BY f.id""",
            [alert_id],
        )

    def last_review(self, alert_id: int) -> dict | None:
        return self._one(
            """SELECT r.* FROM reviews r JOIN flags f ON f.id = r.flag_id WHERE f.alert_id = ?
               ORDER BY r.id DESC LIMIT 1""",
            [alert_id],
        )

    def flag(self, flag_id: int) -> dict | None:
        return self._one("SELECT * FROM flags WHERE id = ?", [flag_id])

    def post(self, chat_id: int, message_id: int) -> dict | None:
        return self._one("SELECT * FROM posts WHERE chat_id = ? AND message_id = ?", [chat_id, message_id])

    def post_versions(self, chat_id: int, message_id: int) -> list[dict]:
        return self._all(
            "SELECT * FROM post_versions WHERE chat_id = ? AND message_id = ? ORDER BY version", [chat_id, message_id]
        )

    # -- reviews -------------------------------------------------------------------------------
    def record_review(self, alert_id: int, decision: str, new_label: str | None, reviewer_id: int,
                      reviewer_name: str | None) -> int:
        """Apply a moderator's decision to every live flag of an alert; returns how many flags it touched."""
        status = DECISIONS[decision]
        now = self.clock()
        with self.db.atomic():
            flags = self._all("SELECT * FROM flags WHERE alert_id = ? AND status != 'withdrawn'", [alert_id])
            for flag in flags:
                label = new_label if decision == "relabel" else flag["label"]
                self.db.execute(
                    """INSERT INTO reviews (flag_id, reviewer_id, reviewer_name, decision, old_label, new_label, at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    [flag["id"], reviewer_id, reviewer_name, decision, flag["label"], label, now],
                )
                self.db.execute("UPDATE flags SET status = ?, label = ?, updated_at = ? WHERE id = ?",
                                [status, label, now, flag["id"]])
            if decision == "relabel" and flags:
                self.db.execute("UPDATE alerts SET label = ? WHERE id = ?", [new_label, alert_id])
            self._mark_alert_for_edit(alert_id)
        return len(flags)

    def reviews(self, flag_id: int | None = None) -> list[dict]:
        if flag_id is None:
            return self._all("SELECT * FROM reviews ORDER BY id")
        return self._all("SELECT * FROM reviews WHERE flag_id = ? ORDER BY id", [flag_id])

    # -- outbox --------------------------------------------------------------------------------
    def queue_message(self, kind: str, chat_id: int, text: str) -> int:
        now = self.clock()
        with self.db.atomic():
            return self.db.execute(
                "INSERT INTO outbox (kind, chat_id, text, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
                [kind, chat_id, text, now, now],
            ).lastrowid

    def unsent_alerts(self) -> list[dict]:
        return self._all("SELECT * FROM alerts WHERE notify = 1 AND outbox_id IS NULL ORDER BY id")

    def pack_alerts(self, chat_id: int, groups: list[list[int]]) -> list[int]:
        """Give each group of alert ids one outbox message to `chat_id`."""
        now = self.clock()
        ids = []
        with self.db.atomic():
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
        return self._all("SELECT * FROM alerts WHERE outbox_id = ? ORDER BY id", [outbox_id])

    def outbox_row(self, outbox_id: int) -> dict | None:
        return self._one("SELECT * FROM outbox WHERE id = ?", [outbox_id])

    def due_messages(self, now: float | None = None) -> list[dict]:
        now = self.clock() if now is None else now
        return self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id", [now]
        )

    def pending_messages(self, chat_id: int) -> int:
        return self._one("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND chat_id = ?", [chat_id])["n"]

    def sent_since(self, chat_id: int, since: float) -> int:
        return self._one(
            "SELECT COUNT(*) AS n FROM outbox WHERE chat_id = ? AND status = 'sent' AND sent_at > ?", [chat_id, since]
        )["n"]

    def mark_sent(self, outbox_id: int, message_id: int) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET status = 'sent', message_id = ?, sent_at = ?, needs_edit = 0 WHERE id = ?",
                [message_id, self.clock(), outbox_id],
            )

    def defer(self, outbox_id: int, delay: float, error: str) -> None:
        with self.db.atomic():
            self.db.execute(
                """UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?""",
                [self.clock() + delay, error[:500], outbox_id],
            )

    def messages_to_edit(self) -> list[dict]:
        return self._all("SELECT * FROM outbox WHERE status = 'sent' AND needs_edit = 1 ORDER BY id")

    def edited(self, outbox_id: int) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET needs_edit = 0 WHERE id = ?", [outbox_id])

    # -- queries for commands and digests --------------------------------------------------------
    def flags_between(self, start: float, end: float) -> list[dict]:
        return self._all(
            """SELECT f.*, c.title AS chat_title, c.username AS chat_username FROM flags f
               LEFT JOIN chats c ON c.id = f.chat_id WHERE f.created_at > ? AND f.created_at <= ?
               ORDER BY f.score DESC, f.id""",
            [start, end],
        )

    def recent_flags(self, limit: int) -> list[dict]:
        return self._all(
            """SELECT f.*, c.title AS chat_title, c.username AS chat_username FROM flags f
               LEFT JOIN chats c ON c.id = f.chat_id ORDER BY f.id DESC LIMIT ?""",
            [limit],
        )

    def pending_alerts(self, limit: int) -> list[dict]:
        """Alerts that still have a pending flag, highest probability first."""
        return self._all(
            """SELECT a.id, a.label, MAX(f.score) AS score, COUNT(*) AS flags FROM alerts a
               JOIN flags f ON f.alert_id = a.id WHERE f.status = 'pending'
               GROUP BY a.id ORDER BY score DESC, a.id LIMIT ?""",
            [limit],
        )

    def count_pending_flags(self) -> int:
        return self._one("SELECT COUNT(*) AS n FROM flags WHERE status = 'pending'")["n"]

    def stats(self, since: float) -> dict:
        by_label = self._all("SELECT label, COUNT(*) AS n FROM flags WHERE created_at > ? GROUP BY label", [since])
        by_status = self._all("SELECT status, COUNT(*) AS n FROM flags WHERE created_at > ? GROUP BY status", [since])
        posts = self._one("SELECT COUNT(*) AS n FROM post_versions WHERE seen_at > ?", [since])["n"]
        return {"posts_scanned": posts, "by_label": {r["label"]: r["n"] for r in by_label},
                "by_status": {r["status"]: r["n"] for r in by_status}}

    def all_flags(self) -> list[dict]:
        return self._all(
            """SELECT f.*, c.title AS chat_title, c.username AS chat_username, p.text AS text FROM flags f
               LEFT JOIN chats c ON c.id = f.chat_id
               LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id ORDER BY f.id"""
        )

    def reviewed_flags(self) -> list[dict]:
        """The latest review of every flag that stands reviewed now, with its post's text, oldest review
        first. A flag reopened by an edit (status pending again) is left out: its review was of another text."""
        return self._all(
            """SELECT r.id AS review_id, r.flag_id, r.decision, r.old_label, r.new_label, r.at, r.reviewer_id,
                      f.chat_id, f.message_id, f.status, p.text AS text FROM reviews r
               JOIN flags f ON f.id = r.flag_id
               LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
               WHERE r.id = (SELECT MAX(id) FROM reviews WHERE flag_id = r.flag_id)
                 AND f.status IN ('confirmed', 'false_positive', 'relabelled')
               ORDER BY r.at, r.id"""
        )

    def iter_flag_details(self, statuses: Iterable[str] = (), labels: Iterable[str] = (),
                          since: float | None = None) -> Iterable[dict]:
        """Flags with their chat, post text and latest review, oldest first, read as they are written out."""
        where, params = [], []
        statuses, labels = list(statuses), list(labels)
        if statuses:
            where.append(f"f.status IN ({','.join('?' * len(statuses))})")
            params += statuses
        if labels:
            where.append(f"f.label IN ({','.join('?' * len(labels))})")
            params += labels
        if since is not None:
            where.append("COALESCE(p.date, f.created_at) >= ?")
            params.append(since)
        cursor = self.db.execute(
            f"""SELECT f.id, f.chat_id, c.title AS chat_title, c.username AS chat_username, f.message_id,
                       COALESCE(p.date, f.created_at) AS date, f.label, f.score, f.status, f.reasons, f.created_at,
                       f.model_version, r.reviewer_name, r.reviewer_id, r.at AS reviewed_at, p.text AS text
                FROM flags f
                LEFT JOIN chats c ON c.id = f.chat_id
                LEFT JOIN posts p ON p.chat_id = f.chat_id AND p.message_id = f.message_id
                LEFT JOIN reviews r ON r.id = (SELECT MAX(id) FROM reviews WHERE flag_id = f.id)
                {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY f.id""",
            params,
        )
        names = [c[0] for c in cursor.description]
        for row in cursor:
            yield dict(zip(names, row))

    def reviews_between(self, start: float, end: float) -> int:
        return self._one("SELECT COUNT(*) AS n FROM reviews WHERE at > ? AND at <= ?", [start, end])["n"]

    def last_digest(self) -> dict | None:
        return self._one("SELECT * FROM digests ORDER BY id DESC LIMIT 1")

    def record_digest(self, start: float, end: float, flags: int, chat_id: int, text: str) -> int:
        """Queue a digest and remember its period, in one transaction so a crash cannot send it twice."""
        with self.db.atomic():
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
