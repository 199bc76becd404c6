"""Scanning posts: classify off the event loop, store the outcome, keep what could not be stored."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from telegram import Update
from telegram.ext import ContextTypes

from bot.ingest import describe, post_from_message, scan_text
from bot.services import Services, services
from bot.storage import Post

log = logging.getLogger(__name__)


async def on_post(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Scan a channel post or group message, new or edited, and store the verdict."""
    message = update.effective_message
    svc = services(context)
    if message is None or message.chat.id == svc.moderator_chat_id:
        return  # the moderators' own chat holds alerts and discussion, not posts to scan
    text = scan_text(message)
    if text is None:
        log.info("chat %d message %d: %s, nothing to scan", message.chat.id, message.message_id, describe(message))
        return
    try:
        # predict() is CPU-bound; in a thread it cannot stall polling or the outbox during a burst.
        verdict = await asyncio.to_thread(svc.classifier.predict, text)
    except Exception:
        log.exception("classifying chat %d message %d failed", message.chat.id, message.message_id)
        return
    save(svc, post_from_message(message, text), verdict)


def save(svc: Services, post: Post, verdict) -> bool:
    """Store one scan; on a database error keep it in memory for `retry_unsaved` and say so in the log.

    Scans already waiting are stored first, and while they cannot be this one waits behind them: an older
    version of a post must never be stored after a newer edit.
    """
    if svc.unsaved:
        retry_unsaved(svc)
    if svc.unsaved:
        _keep(svc, post, verdict)
        log.warning("chat %d message %d waits behind %d earlier scans for the database",
                    post.chat_id, post.message_id, len(svc.unsaved) - 1)
        return False
    try:
        outcome = svc.store_scan(post, verdict)
    except sqlite3.Error as exc:
        _keep(svc, post, verdict)
        log.error("database write failed (%s): chat %d message %d kept in memory for retry (%d waiting)",
                  exc, post.chat_id, post.message_id, len(svc.unsaved))
        return False
    if outcome.duplicate:
        log.info("chat %d message %d seen again with the same text; not stored twice", post.chat_id, post.message_id)
    elif outcome.withdrawn:
        log.info("chat %d message %d edited to benign; flag %d withdrawn", post.chat_id, post.message_id, outcome.flag_id)
    elif outcome.flag_id is not None:
        log.info("chat %d message %d flagged %s p=%.2f (flag %d, alert %d)", post.chat_id, post.message_id,
                 verdict.label, verdict.score, outcome.flag_id, outcome.alert_id)
    return True


def _keep(svc: Services, post: Post, verdict) -> None:
    """Queue a scan for `retry_unsaved`; a full queue drops its oldest scan, and says which."""
    if svc.unsaved.maxlen is not None and len(svc.unsaved) >= svc.unsaved.maxlen:
        oldest, _ = svc.unsaved[0]
        log.error("dropped the oldest scan waiting for the database: chat %d message %d (%d scans wait, the most kept)",
                  oldest.chat_id, oldest.message_id, len(svc.unsaved))
    svc.unsaved.append((post, verdict))


def retry_unsaved(svc: Services) -> int:
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
