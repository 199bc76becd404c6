"""Acknowledge an update to Telegram only once it is handled and its scan stored.

PTB's updater confirms a batch of updates (the ``offset`` of the next ``getUpdates``) as soon as it has put
them in the application's queue, before any handler ran. A process killed at that moment loses every update
of the batch: Telegram has forgotten them and the database never saw them. Here the next ``getUpdates``
waits until the queue is processed (``update_queue.join()``) and no scan waits in memory for a locked
database, so what Telegram forgets is in the database. An update handled twice (killed after storing, before
confirming) is stored once: posts are keyed by ``(chat_id, message_id)``.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time

log = logging.getLogger(__name__)

# The last getUpdates of a graceful stop confirms what was processed; it waits this long for waiting scans.
SHUTDOWN_WAIT_SECONDS = 5.0


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
            log.warning("stopping with %d scans waiting for the database: the updates are not confirmed to "
                        "Telegram, which delivers them again at the next start", self._held_scans() + self._in_flight())
            return ()
        return await self._bot.get_updates(*args, **kwargs)

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
                log.warning("%d scans wait for the database; new updates are not confirmed to Telegram until "
                            "they are stored", self._held_scans())
                logged = True
            await asyncio.sleep(0.1)
        if logged:
            log.info("the waiting scans are stored; polling resumes")
        return True


def confirm_after_store(application, held_scans, scans_in_flight=lambda: 0) -> None:
    """Make the application's updater confirm updates only after they are processed and stored."""
    updater = application.updater
    if updater is not None and not isinstance(updater.bot, AckAfterStoreBot):
        updater.bot = AckAfterStoreBot(updater.bot, application, held_scans, scans_in_flight)
