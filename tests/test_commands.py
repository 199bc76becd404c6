"""Commands: /check for anyone, moderator commands for moderators only, the command menu."""

import csv
import io

from bot.commands import MODERATOR_COMMANDS, PUBLIC_COMMANDS, register_commands
from tests.conftest import LINK_BAIT, MODERATOR_CHAT_ID, outside_code
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}


def last_reply(harness) -> str:
    return harness.api.calls_to("sendMessage")[-1].params["text"]


async def test_check_text_reply_and_forward(harness):
    await harness.send(U.private_message(1, "/check join the presale <now>", user=U.STRANGER))
    assert "ICO / token sale" in last_reply(harness) and "word: presale" in last_reply(harness)
    replied = {"message_id": 5, "date": 1, "chat": U.GROUP, "text": "VIP signals here"}
    await harness.send(U.command("/check", U.GROUP, user=U.STRANGER, reply_to_message=replied))
    assert "Trading service" in last_reply(harness)
    forward = {"type": "channel", "date": 1, "message_id": 9, "chat": U.CHANNEL}
    await harness.send(U.private_message(2, "nothing to see", user=U.STRANGER, forward_origin=forward))
    assert "Benign" in last_reply(harness)
    await harness.send(U.private_message(3, "/check", user=U.STRANGER))
    assert "Send /check followed by a text" in last_reply(harness)


async def test_moderator_commands_refuse_others(harness):
    for name in ("stats", "recent", "pending", "chats", "export", "model", "reload"):
        await harness.send(U.private_message(1, f"/{name}", user=U.STRANGER))
        assert last_reply(harness) == "Sorry, that command is for the moderators only."
    assert harness.api.calls_to("sendDocument") == []


async def test_stats_recent_chats_pending(harness):
    await harness.send(U.channel_post(1, "Presale live"))
    await harness.send(U.group_message(2, "maybe-token soon"))
    await harness.send(U.command("/stats 30", MODS))
    assert "Last 30 days" in last_reply(harness) and "ico 2" in last_reply(harness)
    await harness.send(U.command("/recent 1", MODS))
    assert last_reply(harness).startswith("#2 ico p=0.55")
    await harness.send(U.command("/chats", MODS))
    assert "<code>Crypto Gems</code> @cryptogems" in last_reply(harness) and "Traders chat" in last_reply(harness)
    await harness.send(U.command("/pending", MODS))
    listing = harness.api.calls_to("sendMessage")[-2:]
    assert all(c.params["reply_markup"]["inline_keyboard"] for c in listing)


async def test_export_sends_a_csv_document(harness):
    await harness.send(U.channel_post(1, "Presale live, with \"quotes\", and, commas"))
    await harness.send(U.command("/export", MODS))
    [doc] = harness.api.calls_to("sendDocument")
    filename, content = next(iter(doc.files.values()))
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert filename.endswith(".csv") and len(rows) == 1
    assert rows[0]["link"] == "https://t.me/cryptogems/1" and rows[0]["text"].endswith("and, commas")


async def test_model_and_reload(bot_factory):
    new = FakeClassifier(version="fake-2")
    harness = await bot_factory(loader=lambda: new)
    await harness.send(U.command("/model", MODS))
    assert "fake-1" in last_reply(harness) and "macro_f1" in last_reply(harness)
    await harness.send(U.command("/reload", MODS))
    assert last_reply(harness) == "Model reloaded: fake-1 → fake-2"
    assert harness.services.classifier is new


async def test_failed_reload_keeps_the_running_model(bot_factory):
    def broken():
        raise RuntimeError("model file is corrupt")
    harness = await bot_factory(loader=broken)
    await harness.send(U.command("/reload", MODS))
    assert "Reload failed, still using fake-1: model file is corrupt" == last_reply(harness)
    assert harness.services.classifier.version == "fake-1"


async def test_commands_are_registered(harness):
    await register_commands(harness.app.bot, MODERATOR_CHAT_ID)
    default, moderators = harness.api.calls_to("setMyCommands")
    assert [c["command"] for c in default.params["commands"]] == [c.command for c in PUBLIC_COMMANDS]
    assert len(moderators.params["commands"]) == len(PUBLIC_COMMANDS + MODERATOR_COMMANDS)
    assert moderators.params["scope"] == {"type": "chat", "chat_id": MODERATOR_CHAT_ID}


async def test_moderator_commands_only_in_the_moderators_chat_or_in_private(harness, caplog):
    await harness.send(U.channel_post(1, "Presale live"))
    for name in ("stats", "recent", "pending", "chats", "export", "model", "reload"):
        await harness.send(U.command(f"/{name}", U.GROUP, user=U.MODERATOR))  # a watched, public group
        assert last_reply(harness) == "Moderator commands work only in the moderators' chat or in private."
    assert harness.api.calls_to("sendDocument") == []
    assert "refused /export by moderator 111 in chat -1005555555555" in caplog.text
    await harness.send(U.private_message(2, "/export"))  # a moderator's private chat
    await harness.send(U.command("/export", MODS))
    assert len(harness.api.calls_to("sendDocument")) == 2


async def test_chats_fits_many_chats_into_messages_within_telegram_limits(harness):
    for i in range(130):
        harness.storage.upsert_chat(-1003000000000 - i, "supergroup", f"Chat {i:03d} " + "долгое название " * 5,
                                    f"chat_{i:03d}_" + "x" * 20, "watched")
    await harness.send(U.command("/chats", MODS))
    replies = harness.api.calls_to("sendMessage", ok_only=False)
    assert len(replies) > 1 and all(c.status == 200 for c in replies)
    text = "\n".join(c.params["text"] for c in replies)
    assert all(f"Chat {i:03d}" in text for i in range(100)) and "Chat 100" not in text
    assert text.endswith("… and 30 more chats")


async def test_chat_titles_in_chats_and_recent_cannot_become_links(harness):
    await harness.send(U.channel_post(1, "Presale live", chat={"id": -1004444444444, "type": "channel", "title": LINK_BAIT}))
    for command in ("/chats", "/recent"):
        await harness.send(U.command(command, MODS))
        assert f"<code>{LINK_BAIT}</code>" in last_reply(harness)
        assert "t.me/scam" not in outside_code(last_reply(harness)) and "@scam_bot" not in outside_code(last_reply(harness))
