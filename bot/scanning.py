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
    await svc.scans.scan(svc, post_from_message(message, text))


# Posts handled together (a getUpdates batch holds up to 100) are classified in one call and stored in one
# transaction: a call of the model costs ~8 ms whatever the batch size up to a few hundred posts, and a
# commit one fsync, so one post at a time caps the bot at ~100 posts/s.
MAX_SCAN_BATCH = 256


class ScanBatcher:
    """Collects the posts whose handlers are waiting, classifies them in a worker thread in one call, and
    stores them in arrival order in one transaction. `in_flight` counts posts handed in and not yet stored
    (or queued in memory), so that polling can wait for them before confirming updates to Telegram."""

    def __init__(self):
        self.pending: list[tuple] = []
        self.in_flight = 0
        self._runner: asyncio.Task | None = None

    async def scan(self, svc: Services, post: Post) -> None:
        done = asyncio.get_running_loop().create_future()
        self.pending.append((post, done))
        self.in_flight += 1
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(svc))
        await done

    async def _run(self, svc: Services) -> None:
        while self.pending:
            await asyncio.sleep(0)  # let the other posts of the same getUpdates batch join this one
            batch, self.pending = self.pending[:MAX_SCAN_BATCH], self.pending[MAX_SCAN_BATCH:]
            try:
                await self._scan_batch(svc, [post for post, _ in batch])
            finally:
                self.in_flight -= len(batch)
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    @staticmethod
    async def _scan_batch(svc: Services, posts: list[Post]) -> None:
        texts = [post.text for post in posts]
        classifier = svc.classifier
        try:
            # CPU-bound; in a thread it cannot stall polling or the outbox during a burst.
            if len(texts) > 1 and hasattr(classifier, "predict_many"):
                verdicts = await asyncio.to_thread(classifier.predict_many, texts)
            else:
                verdicts = [await asyncio.to_thread(classifier.predict, text) for text in texts]
        except Exception:
            log.exception("classifying %d posts failed; scanning them one by one", len(posts))
            verdicts = []
            for post in posts:
                try:
                    verdicts.append(await asyncio.to_thread(classifier.predict, post.text))
                except Exception:
                    log.exception("classifying chat %d message %d failed", post.chat_id, post.message_id)
                    verdicts.append(None)
        save_many(svc, [(p, v) for p, v in zip(posts, verdicts) if v is not None])


def save_many(svc: Services, scans: list[tuple[Post, object]]) -> None:
    """Store several scans in one transaction (one commit, one fsync); on a database error keep them all,
    in order, for `retry_unsaved`."""
    if svc.unsaved:
        retry_unsaved(svc)
    if len(scans) <= 1 or svc.unsaved:
        for post, verdict in scans:
            save(svc, post, verdict)
        return
    try:
        with svc.storage.db.atomic():
            outcomes = [svc.store_scan(post, verdict) for post, verdict in scans]
    except sqlite3.Error as exc:
        for post, verdict in scans:
            _keep(svc, post, verdict)
        log.error("database write failed (%s): %d posts kept in memory for retry (%d waiting)",
                  exc, len(scans), len(svc.unsaved))
        return
    for (post, verdict), outcome in zip(scans, outcomes):
        _log_outcome(post, verdict, outcome)


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
    _log_outcome(post, verdict, outcome)
    return True


def _log_outcome(post: Post, verdict, outcome) -> None:
    if outcome.duplicate:
        log.info("chat %d message %d seen again with the same text; not stored twice", post.chat_id, post.message_id)
    elif outcome.withdrawn:
        log.info("chat %d message %d edited to benign; flag %d withdrawn", post.chat_id, post.message_id, outcome.flag_id)
    elif outcome.flag_id is not None:
        log.info("chat %d message %d flagged %s p=%.2f (flag %d, alert %d)", post.chat_id, post.message_id,
                 verdict.label, verdict.score, outcome.flag_id, outcome.alert_id)


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
