"""Delivery of alerts, notices and digests to the moderators, through the ``outbox`` table.

An outbox row is marked sent only after Telegram accepted it, and nothing is ever removed, so a
Telegram error, a 429 or a restart delays a message but never loses it; a sent row is never sent again.
Alerts are packed into messages here: one per alert while the chat's budget of ALERTS_PER_MINUTE messages a minute
allows, batches of several alerts when flags come faster.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import warnings
from datetime import timedelta

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError

from bot.alerts import MAX_BATCH, AlertExtras, AlertView, render_alert
from bot.settings import TELEGRAM_GROUP_MESSAGES_PER_MINUTE
from bot.storage import Storage

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
MAX_BACKOFF = 600.0


def backoff(attempts: int) -> float:
    """Seconds to wait after the n-th failure: 2, 4, 8 … capped at ten minutes."""
    return min(MAX_BACKOFF, 2.0 * 2**attempts)


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta; both are handled
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def plan_batches(alert_ids: list[int], budget: int) -> list[list[int]]:
    """Split alerts into at most `budget` messages (at least one), each of at most MAX_BATCH alerts.

    While the budget allows, every alert is its own message; beyond it alerts share messages, and
    what does not fit waits for the next round.
    """
    if not alert_ids:
        return []
    budget = max(budget, 1)
    if len(alert_ids) <= budget:
        return [[a] for a in alert_ids]
    size = min(MAX_BATCH, math.ceil(len(alert_ids) / budget))
    return [alert_ids[i : i + size] for i in range(0, len(alert_ids), size)][:budget]


def render(storage: Storage, outbox_id: int, secret: bytes, per_minute: int, extras: AlertExtras | None = None):
    """The HTML text and keyboard of one alert message, from what is stored now."""
    views = [
        AlertView(a, storage.alert_flags(a["id"]), storage.last_review(a["id"]))
        for a in storage.outbox_alerts(outbox_id)
    ]
    return render_alert(views, secret, per_minute, extras)


class Outbox:
    """Sends what the outbox holds, within Telegram's limits; `flush` is called by a repeating job."""

    def __init__(
        self, storage: Storage, moderator_chat_id: int | None, per_minute: int = TELEGRAM_GROUP_MESSAGES_PER_MINUTE
    ):
        self.storage = storage
        self.chat_id = moderator_chat_id
        self.per_minute = per_minute
        self._warned_no_chat = False
        # The outbox job, the digest job and a review's edits run concurrently: one round at a time, or a
        # message read as pending by two rounds would be sent twice.
        self._lock = asyncio.Lock()
        # Messages Telegram accepted whose row could not be marked sent (a locked database): outbox id ->
        # message id. Marked before anything else in the next round, and never sent again meanwhile.
        self._unmarked: dict[int, int] = {}
        # What an alert shows beyond the review (bot/alert_actions.py), with a coroutine that readies it (the bot's
        # rights in the post's chat) before the alert is rendered; None: the review alone.
        self.extras = None

    def pack(self) -> None:
        """Give unsent alerts their messages, batching them when the minute's budget is short."""
        unsent = self.storage.unsent_alerts()
        if not unsent:
            return
        if self.chat_id is None:
            if not self._warned_no_chat:
                log.warning("MODERATOR_CHAT_ID is not set: %d alerts wait in the outbox", len(unsent))
                self._warned_no_chat = True
            return
        now = self.storage.clock()
        budget = (
            self.per_minute
            - self.storage.sent_since(self.chat_id, now - 60)
            - self.storage.pending_messages(self.chat_id)
        )
        if budget <= 0 and self.storage.pending_messages(self.chat_id):
            return  # messages already wait for the budget; let the alerts accumulate into bigger batches
        groups = plan_batches([a["id"] for a in unsent], budget)
        self.storage.pack_alerts(self.chat_id, groups)
        if any(len(g) > 1 for g in groups):
            log.info(
                "batched %d alerts into %d messages (limit %d a minute)", len(unsent), len(groups), self.per_minute
            )

    async def flush(self, bot: Bot, secret: bytes) -> int:
        """Send due messages and apply pending edits; returns how many messages were sent."""
        async with self._lock:
            return await self._flush(bot, secret)

    async def _flush(self, bot: Bot, secret: bytes) -> int:
        self._retry_unmarked()
        self.pack()
        sent = 0
        now = self.storage.clock()
        for row in self.storage.due_messages(now):
            if row["id"] in self._unmarked or self.storage.sent_since(row["chat_id"], now - 60) >= self.per_minute:
                continue
            outcome = await self._send(bot, row, secret)
            if outcome == "stop":
                break
            sent += outcome == "sent"
        await self._apply_edits(bot, secret)
        return sent

    async def _send(self, bot: Bot, row: dict, secret: bytes) -> str:
        """Send one outbox row: "sent", "deferred" (retried later), or "stop" (flood control: stop the round)."""
        try:
            if row["kind"] == "alert":
                text, markup = await self._render(bot, row["id"], secret)
            else:
                text, markup = row["text"], None
            message = await bot.send_message(
                row["chat_id"], text, parse_mode=ParseMode.HTML, reply_markup=markup, link_preview_options=NO_PREVIEW
            )
        except RetryAfter as exc:
            # Flood control holds for the whole bot: stop this round, retry this row when told.
            delay = retry_seconds(exc)
            log.warning("Telegram asked to wait %.0f s (429); outbox message %d delayed", delay, row["id"])
            self.storage.defer(row["id"], delay, f"429 retry after {delay:.0f}s")
            return "stop"
        except TelegramError as exc:
            delay = backoff(row["attempts"])
            log.warning("sending outbox message %d failed (%s); retry in %.0f s", row["id"], exc, delay)
            self.storage.defer(row["id"], delay, str(exc))
            return "deferred"
        self._mark_sent(row["id"], message.message_id)
        log.info("sent %s %d to chat %d as message %d", row["kind"], row["id"], row["chat_id"], message.message_id)
        return "sent"

    async def _render(self, bot: Bot, outbox_id: int, secret: bytes):
        if self.extras is not None:
            await self.extras.prepare(bot, self.storage.outbox_alerts(outbox_id))
        return render(self.storage, outbox_id, secret, self.per_minute, self.extras)

    async def send_now(self, bot: Bot, outbox_id: int, secret: bytes) -> bool:
        """Send one queued message now (``scan --alert``); when it fails it stays queued for the bot's outbox."""
        row = self.storage.outbox_row(outbox_id)
        if row is None or row["status"] != "pending":
            return False
        return await self._send(bot, row, secret) == "sent"

    def _mark_sent(self, outbox_id: int, message_id: int) -> None:
        """Record that Telegram accepted a message; when the database refuses, remember it rather than resend it."""
        try:
            self.storage.mark_sent(outbox_id, message_id)
        except sqlite3.Error as exc:
            self._unmarked[outbox_id] = message_id
            log.error(
                "outbox message %d was sent as message %d but not marked sent (database error %s); "
                "kept in memory, it will not be sent again",
                outbox_id,
                message_id,
                exc,
            )
            raise

    def _retry_unmarked(self) -> None:
        """Mark the messages that were sent while the database was unavailable; raises while it still is."""
        for outbox_id, message_id in list(self._unmarked.items()):
            self.storage.mark_sent(outbox_id, message_id)
            del self._unmarked[outbox_id]
            log.info("outbox message %d marked sent after a database error", outbox_id)

    async def apply_edits(self, bot: Bot, secret: bytes) -> None:
        """Re-render sent alerts whose flags changed (a review, an edit, another chat with the same text)."""
        async with self._lock:
            await self._apply_edits(bot, secret)

    async def _apply_edits(self, bot: Bot, secret: bytes) -> None:
        for row in self.storage.messages_to_edit():
            text, markup = await self._render(bot, row["id"], secret)
            try:
                await bot.edit_message_text(
                    text,
                    chat_id=row["chat_id"],
                    message_id=row["message_id"],
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    link_preview_options=NO_PREVIEW,
                )
            except RetryAfter as exc:
                log.warning("Telegram asked to wait %.0f s before editing alerts", retry_seconds(exc))
                return
            except BadRequest as exc:
                # "message is not modified" or a message deleted by a moderator: nothing more to do.
                log.info("alert message %d not edited: %s", row["id"], exc)
            except TelegramError as exc:
                log.warning("editing alert message %d failed (%s); will retry", row["id"], exc)
                continue
            self.storage.edited(row["id"])
