"""/watch, /unwatch and /watching in the moderators' chat, against the fake t.me over HTTP."""

import pytest

from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U

MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}


@pytest.fixture
async def watch_harness(bot_factory, web_preview):
    return await bot_factory(telegram_web_url=web_preview.base_url, watch_min_delay_seconds=0.0)


def last_reply(harness) -> str:
    return harness.api.calls_to("sendMessage")[-1].params["text"]


async def test_watch_watching_unwatch(watch_harness, web_preview):
    web_preview.channel("MoonGems", "Moon Gems").post(1, "hello")
    web_preview.channel("closedclub", "Closed Club", kind="private")
    await watch_harness.send(U.command("/watch t.me/MoonGems @closedclub", MODS))
    reply = last_reply(watch_harness)
    assert "✅ @MoonGems (Moon Gems) is watched" in reply and "⚠️ @closedclub: has no public post list" in reply
    row = watch_harness.storage.db.execute("SELECT added_by FROM web_channels").fetchone()
    assert row == ("Mia Mod",)

    await watch_harness.send(U.command("/watching", MODS))
    assert "👁 @MoonGems <code>Moon Gems</code> · active · 0 posts, 0 flags" in last_reply(watch_harness)

    await watch_harness.send(U.command("/unwatch MoonGems", MODS))
    assert "✅ @MoonGems is no longer watched" in last_reply(watch_harness)
    await watch_harness.send(U.command("/watching", MODS))
    assert last_reply(watch_harness) == "No public channels are watched: /watch NAME adds one."


async def test_watch_without_a_name_explains(watch_harness):
    await watch_harness.send(U.command("/watch", MODS))
    assert last_reply(watch_harness).startswith("Send /watch NAME")


async def test_only_moderators_may_watch(watch_harness, web_preview):
    web_preview.channel("MoonGems").post(1, "hello")
    for text in ("/watch MoonGems", "/unwatch MoonGems", "/watching"):
        await watch_harness.send(U.private_message(1, text, user=U.STRANGER))
        assert last_reply(watch_harness) == "Sorry, that command is for the moderators only."
    assert (
        web_preview.requests == [] and watch_harness.storage.db.execute("SELECT * FROM web_channels").fetchall() == []
    )
