"""Storing scans: in one transaction when several arrive together; on a database error, kept in memory in
order and stored again before anything newer (an older version of a post must never land after an edit)."""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from typing import Any, Protocol

from bot.post import Post

log = logging.getLogger(__name__)


class ScanContext(Protocol):
    """What storing a scan needs of the bot's services (:class:`bot.services.Services` has it)."""

    storage: Any
    classifier: Any
    unsaved: deque

    def store_scan(self, post: Post, verdict): ...


def save_many(svc: ScanContext, scans: list[tuple[Post, object]]) -> None:
    """Store several scans in one transaction (one commit, one fsync); on a database error keep them all,
    in order, for `retry_unsaved`."""
    if svc.unsaved:
        retry_unsaved(svc)
    if len(scans) <= 1 or svc.unsaved:
        for post, verdict in scans:
            save(svc, post, verdict)
        return
    try:
        with svc.storage.transaction():
            outcomes = [svc.store_scan(post, verdict) for post, verdict in scans]
    except sqlite3.Error as exc:
        for post, verdict in scans:
            _keep(svc, post, verdict)
        log.error(
            "database write failed (%s): %d posts kept in memory for retry (%d waiting)",
            exc,
            len(scans),
            len(svc.unsaved),
        )
        return
    for (post, verdict), outcome in zip(scans, outcomes):
        _log_outcome(post, verdict, outcome)


def save(svc: ScanContext, post: Post, verdict) -> bool:
    """Store one scan; on a database error keep it in memory for `retry_unsaved` and say so in the log.

    Scans already waiting are stored first, and while they cannot be this one waits behind them: an older
    version of a post must never be stored after a newer edit.
    """
    if svc.unsaved:
        retry_unsaved(svc)
    if svc.unsaved:
        _keep(svc, post, verdict)
        log.warning(
            "chat %d message %d waits behind %d earlier scans for the database",
            post.chat_id,
            post.message_id,
            len(svc.unsaved) - 1,
        )
        return False
    try:
        outcome = svc.store_scan(post, verdict)
    except sqlite3.Error as exc:
        _keep(svc, post, verdict)
        log.error(
            "database write failed (%s): chat %d message %d kept in memory for retry (%d waiting)",
            exc,
            post.chat_id,
            post.message_id,
            len(svc.unsaved),
        )
        return False
    _log_outcome(post, verdict, outcome)
    return True


def _log_outcome(post: Post, verdict, outcome) -> None:
    if outcome.duplicate:
        log.info("chat %d message %d seen again with the same text; not stored twice", post.chat_id, post.message_id)
    elif outcome.withdrawn:
        log.info(
            "chat %d message %d edited to benign; flag %d withdrawn", post.chat_id, post.message_id, outcome.flag_id
        )
    elif outcome.flag_id is not None:
        log.info(
            "chat %d message %d flagged %s p=%.2f (flag %d, alert %d)",
            post.chat_id,
            post.message_id,
            verdict.label,
            verdict.score,
            outcome.flag_id,
            outcome.alert_id,
        )


def _keep(svc: ScanContext, post: Post, verdict) -> None:
    """Queue a scan for `retry_unsaved`; a full queue drops its oldest scan, and says which."""
    if svc.unsaved.maxlen is not None and len(svc.unsaved) >= svc.unsaved.maxlen:
        oldest, _ = svc.unsaved[0]
        log.error(
            "dropped the oldest scan waiting for the database: chat %d message %d (%d scans wait, the most kept)",
            oldest.chat_id,
            oldest.message_id,
            len(svc.unsaved),
        )
    svc.unsaved.append((post, verdict))


def retry_unsaved(svc: ScanContext) -> int:
    """Store scans kept in memory while the database was unavailable; stops at the first failure."""
    stored = 0
    while svc.unsaved:
        post, verdict = svc.unsaved[0]
        try:
            svc.store_scan(post, verdict)
        except sqlite3.Error as exc:
            log.warning("database still unavailable (%s); %d scans wait", exc, len(svc.unsaved))
            break
        svc.unsaved.popleft()
        stored += 1
    if stored:
        log.info("stored %d scans that had waited for the database", stored)
    return stored
