"""The outbox: batching beyond 20 messages a minute, retries after 429 and 500, no duplicate after a restart."""

import asyncio
import sqlite3

import pytest

from bot.outbox import plan_batches
from bot.storage import Storage
from tests.fakes import updates as U
from tests.fakes.bot_api import InMemoryRequest


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_plan_batches():
    assert plan_batches([1, 2, 3], 5) == [[1], [2], [3]]
    assert plan_batches(list(range(40)), 20) == [[i, i + 1] for i in range(0, 40, 2)]
    assert plan_batches(list(range(300)), 2) == [list(range(10)), list(range(10, 20))]  # the rest waits
    assert plan_batches([1, 2], 0) == [[1, 2]]
    assert plan_batches([], 5) == []


async def test_flags_faster_than_20_a_minute_are_batched_and_none_is_lost(bot_factory, tmp_path):
    clock = Clock()
    harness = await bot_factory(storage=Storage.open(tmp_path / "bot.db", clock=clock))
    for i in range(1, 46):
        await harness.send(U.channel_post(i, f"Presale number {i} of token {i}"))
    assert await harness.flush() == 15  # 45 alerts, 20 messages allowed: batches of 3
    for i in range(46, 76):
        await harness.send(U.channel_post(i, f"Presale number {i} of token {i}"))
    assert await harness.flush() == 5  # the rest of the minute's budget: batches of 6
    assert await harness.flush() == 0  # never more than 20 messages to the group in a minute
    texts = harness.sent_texts()
    assert len(texts) == 20 and all("batched" in t for t in texts)
    alerted = sorted(int(part.split()[0].strip("</b>")) for t in texts for part in t.split("<b>#")[1:])
    assert alerted == list(range(1, 76))  # every alert went out, none twice


async def test_429_and_500_delay_but_do_not_lose(bot_factory, tmp_path):
    clock = Clock()
    harness = await bot_factory(storage=Storage.open(tmp_path / "bot.db", clock=clock))
    harness.api.fail("sendMessage", 429, retry_after=30)
    await harness.send(U.channel_post(1, "Presale now"))
    assert await harness.flush() == 0
    clock.now += 10
    assert await harness.flush() == 0  # still inside retry_after
    harness.api.fail("sendMessage", 500)
    clock.now += 21
    assert await harness.flush() == 0
    row = harness.storage.outbox_row(1)
    assert row["attempts"] == 2 and "500" in row["last_error"]
    clock.now += 5
    assert await harness.flush() == 1
    assert len(harness.sent_texts()) == 1


async def test_restart_sends_nothing_twice(bot_factory, tmp_path):
    first = await bot_factory()
    await first.send(U.channel_post(1, "Presale now"))
    assert await first.flush() == 1
    first.storage.close()
    second = await bot_factory(storage=Storage.open(tmp_path / "bot.db"))
    await second.send(U.channel_post(1, "Presale now"))  # Telegram re-delivers the update
    assert await second.flush() == 0
    assert second.api.calls_to("sendMessage") == []


async def test_same_text_in_a_second_chat_edits_the_sent_alert(harness):
    await harness.send(U.channel_post(1, "Presale now"))
    await harness.flush()
    await harness.send(U.group_message(2, "PRESALE now"))
    await harness.flush()
    assert len(harness.sent_texts()) == 1
    [edit] = harness.api.calls_to("editMessageText")
    assert "Crypto Gems" in edit.params["text"] and "Traders chat" in edit.params["text"]


@pytest.fixture
def slow_telegram(monkeypatch):
    """Every Bot API call yields to the event loop first, as a real HTTP request does."""
    original = InMemoryRequest.do_request

    async def slow(self, *args, **kwargs):
        await asyncio.sleep(0.05)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(InMemoryRequest, "do_request", slow)


async def test_concurrent_flushes_send_an_alert_once(harness, slow_telegram):
    # The outbox job, the digest job and a review can all reach the outbox at the same time.
    await harness.send(U.channel_post(1, "Presale now"))
    sent = await asyncio.gather(harness.flush(), harness.flush(), harness.flush())
    assert sorted(sent) == [0, 0, 1]
    assert len(harness.sent_texts()) == 1


async def test_concurrent_edits_edit_an_alert_once(harness, slow_telegram):
    await harness.send(U.channel_post(1, "Presale now"))
    await harness.flush()
    harness.storage.record_review(1, "confirm", None, 111, "Mia Mod")
    svc = harness.services
    await asyncio.gather(harness.flush(), svc.outbox.apply_edits(harness.app.bot, svc.secret))
    assert len(harness.api.calls_to("editMessageText")) == 1


async def test_a_failed_mark_sent_does_not_resend(harness, monkeypatch):
    real = harness.storage.mark_sent
    attempts = []

    def locked_once(outbox_id, message_id):
        attempts.append(outbox_id)
        if len(attempts) == 1:  # Telegram accepted the message, then the database was locked
            raise sqlite3.OperationalError("database is locked")
        real(outbox_id, message_id)

    monkeypatch.setattr(harness.storage, "mark_sent", locked_once)
    await harness.send(U.channel_post(1, "Presale now"))
    with pytest.raises(sqlite3.OperationalError):
        await harness.flush()  # the round stops; the outbox job logs it
    assert await harness.flush() == 0
    assert await harness.flush() == 0
    [sent] = harness.api.calls_to("sendMessage")
    row = harness.storage.outbox_row(1)
    assert row["status"] == "sent" and row["message_id"] == int(next(iter(harness.api.messages))[1])
    assert attempts == [1, 1]
