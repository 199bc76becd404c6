"""Acknowledge an update to Telegram only once it is handled and its scan stored.

PTB's updater confirms a batch of updates (the ``offset`` of the next ``getUpdates``) as soon as it has put
them in the application's queue, before any handler ran. A process killed at that moment loses every update
of the batch: Telegram has forgotten them and the database never saw them. Here the next ``getUpdates``
waits until the queue is processed (``update_queue.join()``) and no scan waits in memory for a locked
database, so what Telegram forgets is in the database. An update handled twice (killed after storing, before
confirming) is stored once: posts are keyed by ``(chat_id, message_id)``.

A clean stop (SIGTERM, Ctrl-C) ends with PTB's ``Updater._stop_polling``: it cancels the polling task without
awaiting the request it was making, then sends one last ``getUpdates`` (``timeout=0``, the offset of what was
processed) to confirm it. That cancel can land while httpx hands the long poll's connection back to its pool
(anyio's lock checkpoint in httpcore's ``_response_closed`` does not hold off an asyncio ``Task.cancel``): the
connection then stays checked out for good, and with PTB's default of one connection for ``getUpdates`` the
confirming call waits for the pool, times out, and PTB logs it as an error with a traceback while the offset
never reaches Telegram. So the application gets a second ``getUpdates`` connection (``GET_UPDATES_CONNECTIONS``)
for that call alone. A long poll that returns after the stop began has its batch left to Telegram (not
confirmed, delivered again at the next start) instead of PTB's "Updater stopped unexpectedly".
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
import warnings

from telegram import Update
from telegram.error import TelegramError

log = logging.getLogger(__name__)

# The last getUpdates of a graceful stop confirms what was processed; it waits this long for waiting scans.
SHUTDOWN_WAIT_SECONDS = 5.0

# Connections of the getUpdates pool: one for the long poll, one that the stop's confirming call can always
# have, even when the stop's cancel left the long poll's connection checked out (see the module docstring).
GET_UPDATES_CONNECTIONS = 2


class AckAfterStoreBot:
    """Stands in for the bot inside PTB's ``Updater``: every other call goes to the real bot unchanged."""

    def __init__(self, bot, application, held_scans, scans_in_flight=lambda: 0):
        self._bot = bot
        self._application = application
        self._held_scans = held_scans  # () -> number of scans waiting in memory for the database
        self._in_flight = scans_in_flight  # () -> posts handed to a background scan, not yet stored or held

    def __getattr__(self, name):
        return getattr(self._bot, name)

    async def get_updates(self, *args, **kwargs):
        final = kwargs.get("timeout") in (0, dtm.timedelta(0))
        if not await self._wait_until_stored(SHUTDOWN_WAIT_SECONDS if final else None):
            log.warning(
                "stopping with %d scans waiting for the database: the updates are not confirmed to "
                "Telegram, which delivers them again at the next start",
                self._held_scans() + self._in_flight(),
            )
            return ()
        try:
            updates = await self._bot.get_updates(*args, **kwargs)
        except TelegramError:
            raise
        except Exception as exc:
            # PTB could not parse the batch (an update of a shape it does not know). Its updater would log
            # and ask for the same batch again, forever: one poison update would stop the bot for good.
            updates = await self._read_one_by_one(kwargs, exc)
        if updates and not final and self._stopping():
            # The stop began while this long poll was answered: PTB would drop the batch with a critical
            # "Updater stopped unexpectedly". Nothing of it was handled or confirmed; Telegram sends it again.
            log.info(
                "stopping: %d updates fetched as the stop began are left to Telegram for the next start", len(updates)
            )
            return ()
        return updates

    def _stopping(self) -> bool:
        updater = self._application.updater
        return updater is not None and not updater.running

    async def _read_one_by_one(self, kwargs: dict, error: Exception) -> tuple:
        """The same batch, parsed update by update; one that cannot be parsed is logged and stands as an
        empty update, so that it is confirmed and the ones after it are handled."""
        api_kwargs = {"offset": kwargs.get("offset"), "timeout": 0, "allowed_updates": kwargs.get("allowed_updates")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "use Bot.get_updates": that is what just failed
            raw = await self._bot.do_api_request(
                "getUpdates", api_kwargs={k: v for k, v in api_kwargs.items() if v is not None}
            )
        updates = []
        for data in raw or ():
            update_id = data.get("update_id") if isinstance(data, dict) else None
            if not isinstance(update_id, int):
                log.error("an update without an update_id was skipped")
                continue
            try:
                updates.append(Update.de_json(data, self._bot))
            except Exception as exc:
                log.error(
                    "update %d could not be read (%s: %s), skipped; its fields: %s",
                    update_id,
                    type(exc).__name__,
                    str(exc)[:200],
                    ", ".join(sorted(map(str, data))[:10]),
                )
                updates.append(Update(update_id))
        if not updates:
            log.error("a batch of updates could not be read: %s: %s", type(error).__name__, str(error)[:200])
        return tuple(updates)

    async def _wait_until_stored(self, limit: float | None) -> bool:
        deadline = None if limit is None else time.monotonic() + limit
        try:
            await asyncio.wait_for(self._application.update_queue.join(), limit)
        except asyncio.TimeoutError:
            return False
        logged = False
        while self._in_flight() or self._held_scans():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if not self._held_scans():
                await asyncio.sleep(0.002)  # a batch being classified: a few milliseconds
                continue
            if not logged:
                log.warning(
                    "%d scans wait for the database; new updates are not confirmed to Telegram until they are stored",
                    self._held_scans(),
                )
                logged = True
            await asyncio.sleep(0.1)
        if logged:
            log.info("the waiting scans are stored; polling resumes")
        return True


class _NoRawBatchDump(logging.Filter):
    """PTB logs a batch it cannot parse whole, posts and all, with a traceback; `_read_one_by_one` logs
    the update that failed in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Error while parsing updates!")


def confirm_after_store(application, held_scans, scans_in_flight=lambda: 0) -> None:
    """Make the application's updater confirm updates only after they are processed and stored."""
    for name in ("telegram.Bot", "telegram.ext.ExtBot"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoRawBatchDump) for f in logger.filters):
            logger.addFilter(_NoRawBatchDump())
    updater = application.updater
    if updater is not None and not isinstance(updater.bot, AckAfterStoreBot):
        updater.bot = AckAfterStoreBot(updater.bot, application, held_scans, scans_in_flight)
