"""Post handlers: what gets scanned and stored, bad input, a locked database, joining and leaving chats."""

import logging
import sqlite3

from tests.conftest import LINK_BAIT, MODERATOR_CHAT_ID, outside_code
from tests.fakes import updates as U


async def test_promotion_is_flagged_and_alerted_once(harness):
    await harness.send(U.channel_post(10, "Presale of $MOON ends Friday"))
    await harness.send(U.channel_post(11, "BTC breaks 100k, alts next"))
    assert await harness.flush() == 1
    assert await harness.flush() == 0
    [alert] = harness.sent_texts()
    assert "https://t.me/cryptogems/10" in alert
    assert harness.storage.post(U.CHANNEL["id"], 11)["text"] is None


async def test_group_messages_and_edits_are_scanned(harness):
    await harness.send(U.group_message(5, "hello"))
    await harness.send(U.group_message(5, "join our VIP signals", edited=True))
    flags = harness.storage.all_flags()
    assert [(f["message_id"], f["label"]) for f in flags] == [(5, "trading_service")]
    assert len(harness.storage.post_versions(U.GROUP["id"], 5)) == 2


async def test_an_edit_of_an_alerted_post_updates_the_alert(harness):
    await harness.send(U.channel_post(10, "Presale live"))
    await harness.flush()
    await harness.send(U.channel_post(10, "Just news today", edited=True))
    await harness.flush()
    [edit] = harness.api.calls_to("editMessageText")
    assert "Withdrawn" in edit.params["text"]


async def test_moderator_chat_is_not_scanned(harness):
    moderators = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}
    await harness.send(U.group_message(3, "look at this presale spam", chat=moderators))
    assert harness.classifier.calls == [] and harness.storage.all_flags() == []


async def test_bad_input_is_logged_and_the_bot_carries_on(harness, caplog):
    caplog.set_level(logging.INFO)
    sticker = {
        "file_id": "s",
        "file_unique_id": "su",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    await harness.send(U.channel_post(1, None, sticker=sticker))
    await harness.send({"future_update_kind": {"anything": 1}})  # a type newer than this PTB knows
    await harness.send(U.channel_post(2, "presale " + "x" * 4088))  # a full 4096-character post
    assert "message 1: sticker, nothing to scan" in caplog.text
    assert "(unknown) ignored" in caplog.text
    assert [f["message_id"] for f in harness.storage.all_flags()] == [2]
    assert await harness.flush() == 1


async def test_a_locked_database_loses_no_scan(bot_factory, tmp_path, caplog):
    from bot.scan_store import retry_unsaved
    from bot.storage import Storage

    harness = await bot_factory(storage=Storage.open(tmp_path / "bot.db", timeout=0.05))
    await harness.send(U.channel_post(1, "Presale one"))
    locker = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    await harness.send(U.channel_post(2, "Presale two"))
    assert "database write failed" in caplog.text and len(harness.services.unsaved) == 1
    assert retry_unsaved(harness.services) == 0  # still locked: kept
    locker.execute("ROLLBACK")
    locker.close()
    assert retry_unsaved(harness.services) == 1
    assert [f["message_id"] for f in harness.storage.all_flags()] == [1, 2]


async def test_joining_and_leaving_chats(harness):
    await harness.send(U.my_chat_member(U.PRIVATE_CHANNEL, "left", "administrator"))
    assert harness.storage.chat(U.PRIVATE_CHANNEL["id"])["status"] == "watched"
    await harness.send(U.my_chat_member(U.PRIVATE_CHANNEL, "administrator", "kicked"))
    assert harness.storage.chat(U.PRIVATE_CHANNEL["id"])["status"] == "left"
    await harness.flush()
    notices = harness.sent_texts()
    assert len(notices) == 2 and "now watches" in notices[0] and "removed" in notices[1]
    assert "Hidden &lt;b&gt;Alpha&lt;/b&gt;" in notices[0]


async def test_membership_notices_cannot_carry_links(harness):
    chat = {"id": -1004444444444, "type": "supergroup", "title": LINK_BAIT}
    await harness.send(U.my_chat_member(chat, "left", "member", by=U.MODERATOR | {"first_name": LINK_BAIT}))
    await harness.flush()
    [notice] = harness.sent_texts()
    assert notice.count(f"<code>{LINK_BAIT}") == 2  # the chat's title, and who added the bot
    assert "t.me/scam" not in outside_code(notice) and "@scam_bot" not in outside_code(notice)


async def test_posts_starting_with_a_slash_word_are_scanned(harness):
    # Telegram marks any leading /word as a bot_command entity; a promoter can hide behind one.
    text = "/join Presale of $MOON ends Friday"
    entity = [{"type": "bot_command", "offset": 0, "length": 5}]
    await harness.send(U.channel_post(10, text, entities=entity))
    await harness.send(U.group_message(11, text, entities=entity))
    await harness.send(U.group_message(11, "/join our VIP signals", edited=True, entities=entity))
    flags = {(f["chat_id"], f["message_id"]): f["label"] for f in harness.storage.all_flags()}
    assert flags == {(U.CHANNEL["id"], 10): "ico", (U.GROUP["id"], 11): "trading_service"}
    # A command for this bot is still a command: answered, not stored as a post.
    await harness.send(U.command("/check@compliance_test_bot presale", U.GROUP, user=U.STRANGER, message_id=12))
    assert "ICO / token sale" in harness.api.calls_to("sendMessage")[-1].params["text"]
    assert harness.storage.post(U.GROUP["id"], 12) is None


async def test_a_scan_waiting_for_the_database_is_never_stored_after_a_newer_edit(bot_factory, tmp_path):
    from bot.storage import Storage

    harness = await bot_factory(storage=Storage.open(tmp_path / "bot.db", timeout=0.05))
    locker = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    await harness.send(U.group_message(5, "presale soon"))  # waits in memory
    locker.execute("ROLLBACK")
    locker.close()
    await harness.send(U.group_message(5, "join our VIP signals", edited=True))  # the database is back
    assert len(harness.services.unsaved) == 0
    assert [v["label"] for v in harness.storage.post_versions(U.GROUP["id"], 5)] == ["ico", "trading_service"]
    assert harness.storage.post(U.GROUP["id"], 5)["label"] == "trading_service"
    [flag] = harness.storage.all_flags()
    assert flag["label"] == "trading_service"  # the flag follows the latest text


async def test_a_full_memory_queue_logs_the_scan_it_drops(bot_factory, tmp_path, caplog):
    from collections import deque

    from bot.storage import Storage

    harness = await bot_factory(storage=Storage.open(tmp_path / "bot.db", timeout=0.05))
    harness.services.unsaved = deque(maxlen=2)
    locker = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for i in (1, 2, 3):
        await harness.send(U.channel_post(i, f"Presale {i}"))
    locker.execute("ROLLBACK")
    locker.close()
    assert [post.message_id for post, _ in harness.services.unsaved] == [2, 3]
    assert f"dropped the oldest scan waiting for the database: chat {U.CHANNEL['id']} message 1" in caplog.text


async def test_an_update_with_ids_no_chat_can_have_is_logged_and_not_stored(harness, caplog):
    """PTB does not check field types; an update that did not come from Telegram may carry any ids."""
    huge = dict(U.CHANNEL, id=-9223372036854775000)
    caplog.set_level(logging.WARNING)
    await harness.send(U.channel_post(1, "Presale of $MOON ends Friday", chat=huge))
    await harness.send(U.channel_post("12", "Presale of $MOON ends Friday"))
    await harness.send(U.channel_post(2**40, "Presale of $MOON ends Friday"))
    warnings = [r.getMessage() for r in caplog.records if "unusable ids" in r.getMessage()]
    assert len(warnings) == 3
    assert "outside Telegram's chat ids" in warnings[0] and "not a whole number" in warnings[1]
    assert "outside Telegram's message ids" in warnings[2]
    assert harness.storage.chats() == [] and await harness.flush() == 0
    await harness.send(U.channel_post(3, "Presale of $MOON ends Friday"))
    assert harness.storage.post(U.CHANNEL["id"], 3)["label"] == "ico"
