"""Public channels watched through their web preview (t.me/s/NAME): adding, removing, listing, polling.

A compliance team must watch channels whose owners will never make the bot an administrator. Their
public post list is readable without an account at ``TELEGRAM_WEB_URL/s/NAME``; this module keeps the
list of such channels (table ``web_channels``), checks a channel before it is added, and runs a polling
round: fetch each channel's newest page (and older ones back to the highest post id already seen, or
``backfill`` pages), read it (:mod:`bot.web_preview_page`, in a worker thread), classify new and changed
posts (in a worker thread) and store them through :func:`bot.scan_store.save_many`, the path of live
posts, so flags and alerts (the outbox) follow as for the Bot API. Requests go through one
:class:`bot.web_preview_fetch.PoliteFetcher`, which spaces and retries them.

Identity: a web channel is the chat with its Bot API id when the page shows the channel's numeric id
(each post's ``data-view``) or the Bot API already saw the username; otherwise a stable id made from the
username (:func:`web_chat_id`), below every Bot API id, which the database merges into the real one as
soon as the Bot API shows it (trigger ``chats_web_preview_merge``, migration ``m005_web_preview``). So a
post seen both ways is one row, and its link is ``https://t.me/NAME/ID`` either way.

A channel that disappears or stops showing a public post list is marked (``gone`` or ``private``) once,
reported in the next digest, and then looked at only once a day (:data:`RECHECK_SECONDS`), not every round.
A page that does not read (Telegram changed its layout) is logged with its channel and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.post import Post, shown
from bot.scan_store import ScanContext, save_many
from bot.scan_summary import text_table
from bot.storage import Storage, text_hash
from bot.web_preview_fetch import FetchError, PoliteFetcher, RateLimited
from bot.web_preview_page import ChannelPage, PageLayoutError, parse_page, profile_kind

log = logging.getLogger(__name__)

# Telegram usernames: 5 to 32 letters, digits and underscores, starting with a letter (a few old ones have 4).
USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
# Ids given to web channels whose Bot API id is unknown: -(10^15 + 48 bits of the username's hash), far below
# the lowest Bot API id (-4 * 10^12), so they never meet a real chat.
WEB_CHAT_ID_BASE = 10**15
# Pages read back towards the last post seen, when more than a page was posted since the last round.
MAX_CATCHUP_PAGES = 5
# A channel marked gone or private is looked at again this often, in case it comes back.
RECHECK_SECONDS = 86_400
# t.me failing this many channels in a row (retries spent on each), or asking to wait longer than a round
# waits, is down for us: the round stops rather than spend the retries on every other channel.
HOST_FAILURES_TO_STOP = 3
# Channels read but not yet classified and stored: fetching runs ahead of classifying by at most this many.
PIPELINE_DEPTH = 4


class ChannelUnavailable(Exception):
    """The channel does not exist (``kind`` "gone") or shows no public post list ("private")."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def channel_name(text: str) -> str:
    """The username in ``@name``, ``name``, ``t.me/name``, ``https://t.me/s/name`` or a post link; raises
    ValueError with a one-line reason for anything else (an invite link, a private channel's post link)."""
    raw = text.strip()
    name = raw
    if name.startswith("@"):
        name = name[1:]
    elif "/" in name or "." in name:
        url = urlsplit(name if "://" in name else f"https://{name}")
        host = (url.hostname or "").lower().removeprefix("www.")
        if host not in ("t.me", "telegram.me", "telegram.dog"):
            raise ValueError(f"{shown(raw)} is not a t.me link or a channel name")
        parts = [p for p in url.path.split("/") if p]
        if parts and parts[0] == "s":
            parts = parts[1:]
        if not parts:
            raise ValueError(f"{shown(raw)} names no channel")
        if parts[0] in ("joinchat", "c", "addlist") or parts[0].startswith("+"):
            raise ValueError(f"{shown(raw)} is a private link: only public channels (t.me/NAME) have a web preview")
        name = parts[0]
    if not USERNAME.fullmatch(name):
        raise ValueError(f"{shown(raw)} is not a channel username (5-32 letters, digits and _, starting with a letter)")
    return name


def web_chat_id(username: str) -> int:
    """The id of a web channel whose Bot API id is unknown: the same for the same username, case aside."""
    digest = hashlib.sha256(username.lower().encode()).digest()
    return -(WEB_CHAT_ID_BASE + int.from_bytes(digest[:6], "big"))


# -- the list ----------------------------------------------------------------------------------------------


def watched(storage: Storage) -> list[dict]:
    """The watched channels with their chat and counts, by name."""
    return list(
        storage.db.query(
            """SELECT w.*, c.title, c.source, (SELECT COUNT(*) FROM posts p WHERE p.chat_id = w.chat_id) AS posts,
                      (SELECT COUNT(*) FROM flags f WHERE f.chat_id = w.chat_id) AS flags
               FROM web_channels w LEFT JOIN chats c ON c.id = w.chat_id ORDER BY w.username COLLATE NOCASE"""
        )
    )


def watched_channel(storage: Storage, username: str) -> dict | None:
    return next(storage.db.query("SELECT * FROM web_channels WHERE username = ?", [username]), None)


@dataclass(frozen=True)
class Change:
    """What adding or removing one NAME did: ``ok`` and a line for people."""

    name: str
    ok: bool
    message: str


def _valid_names(names: list[str], changes: list[Change]) -> Iterator[str]:
    """The usernames in ``names``, in order; a NAME that is none is reported in ``changes`` where it stands."""
    for raw in names:
        try:
            yield channel_name(raw)
        except ValueError as exc:
            changes.append(Change(raw, False, str(exc)))


async def add_channels(
    storage: Storage, fetcher: PoliteFetcher, names: list[str], added_by: str | None = None
) -> list[Change]:
    """Check each channel on t.me and watch those that have a public post list."""
    changes = []
    for name in _valid_names(names, changes):
        known = watched_channel(storage, name)
        if known is not None and known["status"] == "active":
            changes.append(Change(name, True, f"@{known['username']} is already watched"))
            continue
        try:
            page = await read_page(fetcher, name)
        except ChannelUnavailable as exc:
            changes.append(Change(name, False, f"@{name}: {exc}"))
            continue
        except (FetchError, PageLayoutError) as exc:
            changes.append(Change(name, False, f"@{name}: could not read {fetcher.url('s/' + name)}: {exc}"))
            continue
        username = page.username if (page.username or "").lower() == name.lower() else name
        chat_id = _watch(storage, username, page, added_by)
        changes.append(
            Change(username, True, f"@{username} ({page.title or 'untitled'}) is watched; chat id {chat_id}")
        )
    return changes


def _known_chat_id(storage: Storage, username: str) -> int | None:
    """The Bot API id of a chat with this username, if the Bot API (or an export) showed one."""
    row = next(
        storage.db.query(
            "SELECT id FROM chats WHERE username = ? COLLATE NOCASE AND id > ? ORDER BY updated_at DESC LIMIT 1",
            [username, -WEB_CHAT_ID_BASE],
        ),
        None,
    )
    return row["id"] if row else None


def _watch(storage: Storage, username: str, page: ChannelPage, added_by: str | None) -> int:
    now = storage.clock()
    chat_id = page.chat_id or _known_chat_id(storage, username) or web_chat_id(username)
    with storage.transaction():
        _upsert_web_chat(storage, chat_id, username, page.title, now)
        storage.db.execute(
            """INSERT INTO web_channels (username, chat_id, status, added_at, added_by) VALUES (?, ?, 'active', ?, ?)
               ON CONFLICT (username) DO UPDATE SET username = excluded.username, chat_id = excluded.chat_id,
                 status = 'active', problem = NULL, problem_at = NULL, last_error = NULL""",
            [username, chat_id, now, added_by],
        )
    return chat_id


def _upsert_web_chat(storage: Storage, chat_id: int, username: str, title: str | None, now: float) -> None:
    storage.db.execute(
        """INSERT INTO chats (id, type, title, username, status, source, first_seen, updated_at)
           VALUES (?, 'channel', ?, ?, 'watched', 'web_preview', ?, ?)
           ON CONFLICT (id) DO UPDATE SET title = COALESCE(excluded.title, title), username = excluded.username,
             status = 'watched', updated_at = excluded.updated_at,
             source = CASE WHEN source LIKE '%web_preview%' THEN source ELSE source || '+web_preview' END""",
        [chat_id, title, username, now, now],
    )


def remove_channels(storage: Storage, names: list[str]) -> list[Change]:
    """Stop watching channels; their posts and flags stay."""
    changes = []
    for name in _valid_names(names, changes):
        row = watched_channel(storage, name)
        if row is None:
            changes.append(Change(name, False, f"@{name} is not watched"))
            continue
        with storage.transaction():
            storage.db.execute("DELETE FROM web_channels WHERE username = ?", [name])
            storage.db.execute(
                "UPDATE chats SET status = 'left', updated_at = ? WHERE id = ? AND source = 'web_preview'",
                [storage.clock(), row["chat_id"]],
            )
        changes.append(Change(row["username"], True, f"@{row['username']} is no longer watched; its flags stay"))
    return changes


# -- reading a channel ---------------------------------------------------------------------------------------


async def read_page(fetcher: PoliteFetcher, username: str, before: int | None = None) -> ChannelPage:
    """One page of the channel's post list. Raises ChannelUnavailable, FetchError or PageLayoutError."""
    answer = await fetcher.get(f"s/{username}", params={"before": before} if before else None)
    if answer.status in (301, 302, 303, 307, 308) or answer.status == 404:
        # t.me sends a name without a public post list to its profile page; ask that page whether anyone holds it.
        profile = await fetcher.get(username) if answer.status != 404 else None
        kind = profile_kind(profile.text) if profile is not None and profile.status == 200 else "missing"
        if kind == "profile":
            raise ChannelUnavailable(
                "private",
                "has no public post list (t.me shows only its profile: a private channel, a group, a user or a bot)",
            )
        raise ChannelUnavailable("gone", "no such channel on t.me")
    if answer.status != 200:
        raise FetchError(f"HTTP {answer.status}")
    page = await asyncio.to_thread(parse_page, answer.text)
    if not page.channel_info and not page.posts:
        if profile_kind(answer.text) == "missing":
            raise ChannelUnavailable("gone", "no such channel on t.me")
        raise PageLayoutError("neither a channel header nor posts: not a channel page as this reader knows it")
    return page


# -- a polling round -----------------------------------------------------------------------------------------


@dataclass
class ChannelRound:
    """What one round did for one channel."""

    username: str
    pages: int = 0
    posts: int = 0  # post blocks read, service messages and posts without text included
    new: int = 0
    edited: int = 0
    flags: int = 0  # new and edited posts that read as promotion
    status: str = "ok"  # ok, gone, private, error, skipped
    problem: str | None = None


@dataclass
class RoundSummary:
    channels: list[ChannelRound] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    unsaved: int = 0  # scans waiting in memory for the database at the end of the round

    @property
    def errors(self) -> int:
        return sum(c.status in ("error", "gone", "private", "skipped") for c in self.channels) + (self.unsaved > 0)

    def total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.channels)


def due_channels(storage: Storage, now: float) -> list[dict]:
    """Active channels, and unavailable ones due for their daily look, least recently polled first."""
    return list(
        storage.db.query(
            """SELECT * FROM web_channels WHERE status = 'active' OR polled_at IS NULL OR polled_at <= ?
               ORDER BY polled_at IS NOT NULL, polled_at, username""",
            [now - RECHECK_SECONDS],
        )
    )


async def poll_round(svc: ScanContext, fetcher: PoliteFetcher, *, backfill: int = 0) -> RoundSummary:
    """One round over every watched channel: fetch, read, classify, store. Fetching the next channel overlaps
    classifying and storing the last one; requests are spaced by the fetcher."""
    storage: Storage = svc.storage
    summary = RoundSummary(started=storage.clock())
    queue: asyncio.Queue = asyncio.Queue(PIPELINE_DEPTH)
    read: list[tuple] = []  # (highest post id seen, when, username) of every channel read and stored
    stopped = f"round stopped: {fetcher.url('')} failed for {HOST_FAILURES_TO_STOP} channels in a row or asked to wait"

    async def fetch_all() -> None:
        failures = 0  # channels in a row that t.me would not serve
        for row in due_channels(storage, storage.clock()):
            result = ChannelRound(row["username"])
            summary.channels.append(result)
            if failures >= HOST_FAILURES_TO_STOP:
                result.status, result.problem = "skipped", stopped
                continue
            try:
                pages = await _read_new_pages(fetcher, row, backfill, result)
            except ChannelUnavailable as exc:
                _mark_unavailable(storage, row, exc, result)
                failures = 0
                continue
            except (FetchError, PageLayoutError) as exc:
                result.status, result.problem = "error", str(exc)
                kind = "page did not read (layout changed?)" if isinstance(exc, PageLayoutError) else "fetch failed"
                log.error("web channel @%s: %s: %s; nothing of it stored", row["username"], kind, exc)
                _note(storage, row["username"], last_error=f"{kind}: {exc}")
                if isinstance(exc, FetchError):
                    failures = HOST_FAILURES_TO_STOP if isinstance(exc, RateLimited) else failures + 1
                    if failures >= HOST_FAILURES_TO_STOP:
                        log.error("web preview: %s; the other channels wait for the next round", stopped)
                continue
            failures = 0
            await queue.put((row, pages, result))
        await queue.put(None)

    async def store_all() -> None:
        while (item := await queue.get()) is not None:
            row, pages, result = item
            try:
                progress = await _store_pages(svc, row, pages, result)
                if not svc.unsaved:  # scans waiting in memory: the channel is read from the same place again
                    read.append(progress)
            except sqlite3.Error as exc:
                result.status, result.problem = "error", f"database: {exc}"
                log.error("web channel @%s: database error %s; read again next round", row["username"], exc)
            except Exception as exc:  # a classifier failure: the other channels go on, this one is read again
                result.status, result.problem = "error", f"{type(exc).__name__}: {exc}"
                log.exception("web channel @%s: scanning failed; read again next round", row["username"])

    consumer = asyncio.create_task(store_all())
    try:
        await fetch_all()
        await consumer
    finally:
        consumer.cancel()  # fetching failed or the round was cancelled (a stop): nothing waits for the queue
    # One transaction (one fsync) for the whole round's bookkeeping. Should it be lost, the next round reads
    # the newest page again and stores nothing twice (text hashes); only its catching up goes less far back.
    try:
        with storage.transaction():
            storage.db.conn.executemany(
                """UPDATE web_channels SET last_post_id = MAX(COALESCE(last_post_id, 0), COALESCE(?, 0)),
                     polled_at = ?, status = 'active', problem = NULL, last_error = NULL WHERE username = ?""",
                read,
            )
    except sqlite3.Error as exc:
        log.error("web channels: the round's progress could not be noted: database error %s", exc)
    summary.unsaved = len(svc.unsaved)
    summary.finished = storage.clock()
    return summary


async def _read_new_pages(fetcher: PoliteFetcher, row: dict, backfill: int, result: ChannelRound) -> list[ChannelPage]:
    """The newest page, then older ones: ``backfill`` of them, or back to the last post seen (at most
    MAX_CATCHUP_PAGES)."""
    last = row["last_post_id"]
    pages = [await read_page(fetcher, row["username"])]
    extra = backfill if backfill else MAX_CATCHUP_PAGES
    while extra > 0 and pages[-1].before is not None:
        oldest = min((p.message_id for p in pages[-1].posts), default=None)
        if not backfill and (last is None or oldest is None or oldest <= last + 1):
            break  # caught up with what the last round saw (or first round: the newest page only)
        pages.append(await read_page(fetcher, row["username"], before=pages[-1].before))
        extra -= 1
    result.pages = len(pages)
    result.posts = sum(len(p.posts) for p in pages)
    return pages


def _mark_unavailable(storage: Storage, row: dict, exc: ChannelUnavailable, result: ChannelRound) -> None:
    result.status, result.problem = exc.kind, str(exc)
    now = storage.clock()
    if row["status"] == exc.kind:
        _note(storage, row["username"], polled_at=now)
        return
    # Marked once: the digest reports the change (problem_at), later rounds leave the channel alone.
    log.warning("web channel @%s: %s; marked %s, looked at again daily", row["username"], exc, exc.kind)
    _note(storage, row["username"], status=exc.kind, problem=str(exc), problem_at=now, polled_at=now)


def _note(storage: Storage, username: str, **values) -> None:
    try:
        with storage.transaction():
            storage.db.execute(
                f"UPDATE web_channels SET {', '.join(f'{k} = ?' for k in values)} WHERE username = ?",
                [*values.values(), username],
            )
    except sqlite3.Error as exc:
        log.error("web channel @%s: could not note %s: database error %s", username, ", ".join(values), exc)


async def _store_pages(svc: ScanContext, row: dict, pages: list[ChannelPage], result: ChannelRound) -> tuple:
    """Classify and store the new and changed posts; returns the channel's progress for poll_round to note."""
    storage: Storage = svc.storage
    first = pages[0]
    # The page's spelling of the name (case may differ), but never another channel's name.
    username = first.username if (first.username or "").lower() == row["username"].lower() else row["username"]
    chat_id = row["chat_id"]
    if first.chat_id is not None and first.chat_id != chat_id:
        # The page shows the channel's Bot API id: the stored channel moves to it (the merge trigger), or
        # the username now belongs to another channel.
        with storage.transaction():
            _upsert_web_chat(storage, first.chat_id, username, first.title, storage.clock())
            storage.db.execute("UPDATE web_channels SET chat_id = ? WHERE username = ?", [first.chat_id, username])
        chat_id = first.chat_id
    posts = {}
    for page in pages:
        for web in page.posts:
            if web.text is not None and not web.service and web.channel.lower() == username.lower():
                posts[web.message_id] = Post(
                    chat_id, web.message_id, web.text, web.date, "channel", first.title, username
                )
    stored = _stored_hashes(storage, chat_id, list(posts))
    changed = [p for p in posts.values() if stored.get(p.message_id) != text_hash(p.text)]
    if changed:
        verdicts = await asyncio.to_thread(_classify, svc.classifier, [p.text for p in changed])
        save_many(svc, list(zip(changed, verdicts)))
        result.new = sum(p.message_id not in stored for p in changed)
        result.edited = len(changed) - result.new
        result.flags = sum(bool(v.is_promotion) for v in verdicts)
    if row["status"] != "active":
        log.info("web channel @%s has a public post list again", username)
    return max((w.message_id for page in pages for w in page.posts), default=None), storage.clock(), row["username"]


def _classify(classifier, texts: list[str]) -> list:
    if hasattr(classifier, "predict_many"):
        return classifier.predict_many(texts)
    return [classifier.predict(text) for text in texts]


def _stored_hashes(storage: Storage, chat_id: int, message_ids: list[int]) -> dict[int, str]:
    if not message_ids:
        return {}
    return {
        row["message_id"]: row["text_hash"]
        for row in storage.db.query(
            f"SELECT message_id, text_hash FROM posts WHERE chat_id = ? AND message_id IN ({','.join('?' * len(message_ids))})",
            [chat_id, *message_ids],
        )
    }


def lost_channels(storage: Storage, start: float, end: float) -> list[dict]:
    """Channels marked gone or private in the period (start, end]: what the digest reports, once."""
    return list(
        storage.db.query(
            """SELECT username, status, problem FROM web_channels WHERE status != 'active'
               AND problem_at > ? AND problem_at <= ? ORDER BY username""",
            [start, end],
        )
    )


def round_table(summary: RoundSummary) -> str:
    """The table ``compliance-bot watch poll`` prints."""
    header = ["channel", "pages", "posts", "new", "edited", "flags", "status"]
    rows = [
        [
            f"@{c.username}",
            c.pages,
            c.posts,
            c.new,
            c.edited,
            c.flags,
            c.status + (f": {c.problem}" if c.problem else ""),
        ]
        for c in summary.channels
    ]
    if len(rows) > 1:
        rows.append(["total", *[summary.total(k) for k in ("pages", "posts", "new", "edited", "flags")], ""])
    return (
        text_table(header, rows) if rows else "No channels are watched: add one with `compliance-bot watch add NAME`."
    )
