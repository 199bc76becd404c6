"""/watch, /unwatch and /watching in the moderators' chat, against the fake t.me over HTTP."""

import asyncio

import pytest

from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U

MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}
# The harness handles updates without starting the application, so PTB warns that /watch's background check
# will not be awaited at a stop; these tests wait for its answer themselves.
pytestmark = pytest.mark.filterwarnings("ignore:Tasks created via `Application.create_task`")


@pytest.fixture
async def watch_harness(bot_factory, web_preview):
    return await bot_factory(telegram_web_url=web_preview.base_url, watch_min_delay_seconds=0.0)


def last_reply(harness) -> str:
    return harness.api.calls_to("sendMessage")[-1].params["text"]


async def watch(harness, text: str) -> str:
    """Send /watch, which checks its names in the background, and wait for the answer."""
    sent = len(harness.api.calls_to("sendMessage"))
    await harness.send(U.command(text, MODS))
    for _ in range(200):
        if len(harness.api.calls_to("sendMessage")) > sent:
            return last_reply(harness)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer to {text}")


async def test_watch_watching_unwatch(watch_harness, web_preview):
    web_preview.channel("MoonGems", "Moon Gems").post(1, "hello")
    web_preview.channel("closedclub", "Closed Club", kind="private")
    reply = await watch(watch_harness, "/watch t.me/MoonGems @closedclub")
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


async def test_the_bot_goes_on_while_watch_waits_for_t_me(watch_harness, web_preview):
    web_preview.channel("MoonGems", "Moon Gems").post(1, "hello")
    web_preview.stall("MoonGems", 1.0)
    sent = len(watch_harness.api.calls_to("sendMessage"))
    await watch_harness.send(U.command("/watch MoonGems", MODS))  # returns before t.me answers
    await watch_harness.send(U.channel_post(42, "Presale live"))
    assert watch_harness.storage.post(U.CHANNEL["id"], 42)["label"] == "ico"
    assert len(watch_harness.api.calls_to("sendMessage")) == sent  # no answer yet: t.me is still slow
    for _ in range(100):
        await asyncio.sleep(0.05)
        if len(watch_harness.api.calls_to("sendMessage")) > sent:
            break
    assert "✅ @MoonGems (Moon Gems) is watched" in last_reply(watch_harness)
