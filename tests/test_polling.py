"""bot/polling.py on its own: what a long poll answered while the stop begins becomes."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging

from bot.polling import AckAfterStoreBot


class StubBot:
    def __init__(self, answer: tuple):
        self.answer, self.calls = answer, []

    async def get_updates(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.answer


class StubUpdater:
    running = True


class StubApplication:
    def __init__(self):
        self.update_queue = asyncio.Queue()
        self.updater = StubUpdater()


def ack_bot(answer=("u1", "u2")) -> tuple[AckAfterStoreBot, StubBot, StubApplication]:
    bot, app = StubBot(answer), StubApplication()
    return AckAfterStoreBot(bot, app, held_scans=lambda: 0), bot, app


async def test_a_long_poll_answered_while_running_hands_its_batch_to_the_updater():
    ack, bot, _ = ack_bot()
    assert await ack.get_updates(offset=7, timeout=10) == ("u1", "u2")
    assert bot.calls == [{"offset": 7, "timeout": 10}]


async def test_a_long_poll_answered_as_the_stop_began_leaves_its_batch_to_telegram(caplog):
    ack, _, app = ack_bot()
    app.updater.running = False  # Updater.stop() has begun, its cancel has not reached the poll yet
    with caplog.at_level(logging.DEBUG):
        assert await ack.get_updates(offset=7, timeout=10) == ()
    # Not handed on, so PTB neither queues nor confirms it, and has no "Updater stopped unexpectedly" to log.
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "left to Telegram" in caplog.text


async def test_the_confirming_call_of_the_stop_is_made_with_the_offset_it_is_given():
    ack, bot, app = ack_bot(answer=())
    app.updater.running = False
    assert await ack.get_updates(offset=7, timeout=dtm.timedelta(0)) == ()
    assert bot.calls == [{"offset": 7, "timeout": dtm.timedelta(0)}]
