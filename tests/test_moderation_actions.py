"""Action buttons under an alert: delete the post, ban the sender; moderators only, each on a second press."""

import logging
import time

from bot.action_log import actions
from bot.alert_actions import ARM_SECONDS, decode_action, encode_action
from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U

SPAMMER = {"id": 4242, "is_bot": False, "first_name": "Sam", "last_name": "Spam", "username": "sam_spam"}
NO_USERNAME = {"id": 4343, "is_bot": False, "first_name": "Nameless"}
GROUP2 = {"id": -1006666666666, "type": "supergroup", "title": "Second chat"}
PROMOTING_CHANNEL = {"id": -1003333333333, "type": "channel", "title": "Moon Calls", "username": "mooncalls"}


async def alert_of(harness, update) -> tuple[dict, dict]:
    """Send a post, flush the outbox; the alert message as the fake holds it and its buttons by text."""
    await harness.send(update)
    await harness.flush()
    call = [c for c in harness.api.calls_to("sendMessage") if c.params["chat_id"] == MODERATOR_CHAT_ID][-1]
    message = harness.api.messages[(MODERATOR_CHAT_ID, max(k[1] for k in harness.api.messages))]
    buttons = {b["text"]: b["callback_data"] for row in call.params["reply_markup"]["inline_keyboard"] for b in row}
    return message, buttons | {"_text": call.params["text"]}


def current(harness, message) -> dict:
    return harness.api.messages[(MODERATOR_CHAT_ID, message["message_id"])]


def current_buttons(harness, message) -> dict:
    markup = current(harness, message)["reply_markup"]
    return {b["text"]: b["callback_data"] for row in markup["inline_keyboard"] for b in row}


async def press_twice(harness, message, data, query="q", user=U.MODERATOR):
    await harness.send(U.callback(data, user, current(harness, message), query_id=f"{query}-1"))
    armed = current(harness, message)
    armed_data = next(
        b["callback_data"]
        for row in armed["reply_markup"]["inline_keyboard"]
        for b in row
        if b["text"].startswith("⚠️ Press again")
    )
    await harness.send(U.callback(armed_data, user, armed, query_id=f"{query}-2"))


async def test_buttons_show_what_the_bot_may_do_in_the_chat(harness):
    harness.api.set_member(U.GROUP["id"])
    _, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON ends Friday", user=SPAMMER))
    assert {"🗑 Delete post", "🚫 Ban sender", "🧹 Ban + wipe messages"} <= set(buttons)
    assert all(len(data.encode()) <= 64 for text, data in buttons.items() if text != "_text")
    assert "👤 Sent by <code>Sam Spam</code> (@sam_spam, id 4242)" in buttons["_text"]
    [ask] = harness.api.calls_to("getChatMember")
    assert (ask.params["chat_id"], ask.params["user_id"]) == (U.GROUP["id"], 999000)


async def test_no_rights_no_buttons_and_a_line_saying_why(harness):
    _, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))  # a plain member
    assert not any(t.startswith(("🗑", "🚫", "🧹")) for t in buttons)
    assert "No action buttons: the bot is not an admin allowed to delete messages or ban users here" in buttons["_text"]


async def test_delete_only_when_the_bot_may_not_ban(harness):
    harness.api.set_member(U.GROUP["id"], can_restrict_members=False)
    _, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    assert "🗑 Delete post" in buttons and "🚫 Ban sender" not in buttons


async def test_channel_post_offers_delete_but_no_ban(harness):
    harness.api.set_member(U.CHANNEL["id"])
    _, buttons = await alert_of(harness, U.channel_post(10, "Presale of $MOON"))
    assert "🗑 Delete post" in buttons and "🚫 Ban sender" not in buttons


async def test_first_press_only_arms_the_second_deletes_and_the_alert_says_who(harness, caplog):
    caplog.set_level(logging.INFO)
    harness.api.set_member(U.GROUP["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await harness.send(U.callback(buttons["🗑 Delete post"], U.MODERATOR, message, query_id="first"))
    assert harness.api.calls_to("deleteMessage") == [] and actions(harness.storage) == []
    assert "⚠️ Press again to delete" in current_buttons(harness, message)
    armed = current_buttons(harness, message)["⚠️ Press again to delete"]
    assert decode_action(harness.services.secret, armed)[:2] == (1, "delete")
    assert decode_action(harness.services.secret, armed)[2] is not None  # armed, with the time
    await harness.send(U.callback(armed, U.MODERATOR, current(harness, message), query_id="second"))
    [delete] = harness.api.calls_to("deleteMessage")
    assert (delete.params["chat_id"], delete.params["message_id"]) == (U.GROUP["id"], 10)
    [row] = actions(harness.storage)
    assert (row["action"], row["outcome"], row["actor_id"], row["actor_name"], row["telegram_answer"]) == (
        "delete",
        "done",
        111,
        "Mia Mod",
        "ok",
    )
    text = current(harness, message)["text"]
    assert "🗑 Post deleted by <code>Mia Mod</code> (id 111) at" in text
    assert "🗑 Delete post" not in current_buttons(harness, message)  # done: the button is gone
    assert "🚫 Ban sender" in current_buttons(harness, message)


async def test_ban_and_ban_with_wipe_call_the_api_with_the_sender(harness):
    harness.api.set_member(U.GROUP["id"])
    harness.api.set_member(GROUP2["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await press_twice(harness, message, buttons["🚫 Ban sender"])
    message2, buttons2 = await alert_of(harness, U.group_message(11, "VIP signals daily", GROUP2, user=NO_USERNAME))
    assert "👤 Sent by <code>Nameless</code> (id 4343) · no username" in buttons2["_text"]
    await press_twice(harness, message2, buttons2["🧹 Ban + wipe messages"], query="w")
    bans = harness.api.calls_to("banChatMember")
    assert [(b.params["chat_id"], b.params["user_id"], b.params.get("revoke_messages")) for b in bans] == [
        (U.GROUP["id"], 4242, False),
        (GROUP2["id"], 4343, True),
    ]
    assert [(r["action"], r["target_user_id"]) for r in actions(harness.storage)] == [
        ("ban", 4242),
        ("ban_revoke", 4343),
    ]
    assert "🚫 Sender banned by <code>Mia Mod</code>" in current(harness, message)["text"]
    assert "🧹 Sender banned and their messages deleted" in current(harness, message2)["text"]


async def test_a_post_made_as_a_channel_bans_the_channel(harness):
    harness.api.set_member(U.GROUP["id"])
    post = U.group_message(10, "Presale of $MOON", user={"id": 136817688, "is_bot": True, "first_name": "Channel"})
    post["message"]["sender_chat"] = PROMOTING_CHANNEL
    message, buttons = await alert_of(harness, post)
    assert "📣 Posted as the channel <code>Moon Calls</code> (@mooncalls, id -1003333333333)" in buttons["_text"]
    assert "🧹 Ban + wipe messages" not in buttons  # revoke_messages is for users only
    await press_twice(harness, message, buttons["🚫 Ban sender"])
    [ban] = harness.api.calls_to("banChatSenderChat")
    assert (ban.params["chat_id"], ban.params["sender_chat_id"]) == (U.GROUP["id"], PROMOTING_CHANNEL["id"])
    assert harness.api.calls_to("banChatMember") == []


async def test_anonymous_admin_and_linked_channel_have_no_ban_and_say_why(harness):
    harness.api.set_member(U.GROUP["id"])
    anonymous = U.group_message(10, "Presale of $MOON", user={"id": 1087968824, "is_bot": True, "first_name": "Group"})
    anonymous["message"]["sender_chat"] = U.GROUP
    _, buttons = await alert_of(harness, anonymous)
    assert "🚫 Ban sender" not in buttons and "🗑 Delete post" in buttons
    assert "anonymous admin of the group: there is no one to ban" in buttons["_text"]
    linked = U.group_message(11, "Airdrop for holders", user={"id": 777000, "is_bot": False, "first_name": "Telegram"})
    linked["message"] |= {"sender_chat": PROMOTING_CHANNEL, "is_automatic_forward": True}
    _, buttons = await alert_of(harness, linked)
    assert "🚫 Ban sender" not in buttons
    assert "Copied in from the linked channel <code>Moon Calls</code>" in buttons["_text"]


async def test_telegram_refusals_are_shown_and_logged_never_raised(harness):
    harness.api.set_member(U.GROUP["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    harness.api.refuse("deleteMessage", U.GROUP["id"], "Bad Request: message to delete not found")
    await press_twice(harness, message, buttons["🗑 Delete post"])
    harness.api.refuse(
        "banChatMember", U.GROUP["id"], "Bad Request: not enough rights to restrict/unrestrict chat member"
    )
    await press_twice(harness, message, buttons["🚫 Ban sender"], query="b")
    rows = actions(harness.storage)
    assert [(r["action"], r["outcome"], r["telegram_answer"]) for r in rows] == [
        ("delete", "refused", "Message to delete not found"),
        ("ban", "refused", "Not enough rights to restrict/unrestrict chat member"),
    ]
    text = current(harness, message)["text"]
    assert "⛔ Could not delete the post (<code>Mia Mod</code> (id 111)," in text
    assert "<code>Message to delete not found</code>" in text
    answers = [a.params["text"] for a in harness.api.calls_to("answerCallbackQuery")]
    assert "Not done: Message to delete not found" in answers
    # A refusal leaves the button: the moderator may try again once the cause is fixed.
    assert "🗑 Delete post" in current_buttons(harness, message)


async def test_a_chat_the_bot_has_left_shows_telegrams_answer_and_no_buttons(harness):
    harness.api.refuse("getChatMember", U.GROUP["id"], "Forbidden: bot is not a member of the supergroup chat", 403)
    _, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    assert not any(t.startswith(("🗑", "🚫", "🧹")) for t in buttons)
    assert "Telegram: Forbidden: bot is not a member of the supergroup chat" in buttons["_text"]


async def test_rights_are_cached_briefly(harness):
    harness.api.set_member(U.GROUP["id"])
    await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await alert_of(harness, U.group_message(11, "Airdrop soon", user=SPAMMER))
    assert len(harness.api.calls_to("getChatMember")) == 1
    harness.services.actions.rights.ttl = 0  # as if the cache's time had passed
    await alert_of(harness, U.group_message(12, "VIP signals", user=SPAMMER))
    assert len(harness.api.calls_to("getChatMember")) == 2


async def test_a_stranger_and_forged_data_change_nothing_and_are_logged(harness, caplog):
    caplog.set_level(logging.WARNING, logger="bot.moderation_actions")
    harness.api.set_member(U.GROUP["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    secret = harness.services.secret
    armed = encode_action(secret, 1, "delete", armed_at=time.time())
    await harness.send(U.callback(armed, U.STRANGER, message, query_id="s1"))
    stamp, signature = armed.split(":")[3:]
    forged = [
        armed[:-1] + ("0" if armed[-1] != "0" else "1"),
        "ac:1:D",
        f"ac:99:D:{stamp}:{signature}",  # another flag
        f"ac:1:D:{'zz' + stamp}:{signature}",  # another time
        f"ac:1:B:{stamp}:{signature}",  # another action
        f"ac:1:d:{stamp}:{signature}",
        "ac:x:D:00",
    ]
    for i, data in enumerate(forged):
        await harness.send(U.callback(data, U.MODERATOR, message, query_id=f"f{i}"))
    assert harness.api.calls_to("deleteMessage") == [] and actions(harness.storage) == []
    answers = [a.params["text"] for a in harness.api.calls_to("answerCallbackQuery")]
    assert answers == ["Only moderators can act on flags."] + ["This button is not valid."] * len(forged)
    assert "refused action delete on flag 1 by non-moderator 666" in caplog.text
    assert caplog.text.count("refused malformed or forged action data") == len(forged)


async def test_a_redelivered_second_press_acts_once(harness):
    harness.api.set_member(U.GROUP["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    armed = encode_action(harness.services.secret, 1, "delete", armed_at=time.time())
    press = U.callback(armed, U.MODERATOR, message, query_id="again") | {"update_id": 77}
    await harness.send(press)
    await harness.send(press)
    assert len(harness.api.calls_to("deleteMessage")) == 1 and len(actions(harness.storage)) == 1
    # Another moderator's press on a stale keyboard is answered without a second call.
    await harness.send(U.callback(armed, U.MODERATOR, message, query_id="stale"))
    assert len(harness.api.calls_to("deleteMessage")) == 1
    assert (
        harness.api.calls_to("answerCallbackQuery")[-1].params["text"].startswith("🗑 Post deleted already, by Mia Mod")
    )


async def test_review_buttons_still_work_beside_the_actions(harness):
    harness.api.set_member(U.GROUP["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await harness.send(U.callback(buttons["✅ Confirm"], U.MODERATOR, message))
    assert harness.storage.all_flags()[0]["status"] == "confirmed"
    assert "🗑 Delete post" in current_buttons(harness, message)


async def test_a_press_again_button_left_too_long_only_arms_again(harness):
    harness.api.set_member(U.GROUP["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await harness.send(U.callback(buttons["🗑 Delete post"], U.MODERATOR, message, query_id="arm"))
    stale = current_buttons(harness, message)["⚠️ Press again to delete"]
    harness.storage.clock = lambda: time.time() + ARM_SECONDS + 5  # the moderator walked away
    await harness.send(U.callback(stale, U.MODERATOR, current(harness, message), query_id="late"))
    assert harness.api.calls_to("deleteMessage") == [] and actions(harness.storage) == []
    answer = harness.api.calls_to("answerCallbackQuery")[-1].params["text"]
    assert answer == "That confirmation expired. ⚠️ Press again to delete."
    fresh = current_buttons(harness, message)["⚠️ Press again to delete"]
    assert fresh != stale
    await harness.send(U.callback(fresh, U.MODERATOR, current(harness, message), query_id="now"))
    assert len(harness.api.calls_to("deleteMessage")) == 1


async def test_a_chat_the_bot_was_removed_from_loses_its_buttons_at_once(harness):
    harness.api.set_member(U.GROUP["id"])
    message, buttons = await alert_of(harness, U.group_message(10, "Presale of $MOON", user=SPAMMER))
    assert "🗑 Delete post" in buttons
    await harness.send(U.my_chat_member(U.GROUP, "administrator", "left"))
    harness.storage.mark_alert_for_edit(1)
    await harness.flush()
    assert "🗑 Delete post" not in current_buttons(harness, message)
    assert "No action buttons: the bot is no longer in this chat" in current(harness, message)["text"]


async def test_an_alert_with_long_names_and_many_actions_still_fits_one_message(harness):
    from bot.action_log import ActionRecord, record_action

    groups = [{"id": -1005555555550 - i, "type": "supergroup", "title": "&<b>" * 32} for i in range(3)]
    for i, group in enumerate(groups):
        harness.api.set_member(group["id"])
        user = {"id": 9000 + i, "is_bot": False, "first_name": "<&>" * 80, "username": "u" * 32}
        forward = {"type": "channel", "date": 1, "message_id": 9, "chat": PROMOTING_CHANNEL | {"title": "&" * 128}}
        await harness.send(U.group_message(10, "Presale of $MOON", group, user=user, forward_origin=forward))
    await harness.flush()
    for flag in harness.storage.recent_flags(10):
        for _ in range(6):
            record_action(
                harness.storage,
                ActionRecord(harness.storage.flag(flag["id"]), "delete", "refused", "<&>" * 200, 111, "&" * 128),
            )
    await harness.flush()
    edits = harness.api.calls_to("editMessageText", ok_only=False)
    assert edits and all(c.status == 200 for c in edits)
    assert all(c.status == 200 for c in harness.api.calls_to("sendMessage", ok_only=False))
    assert "⛔ Could not delete the post" in edits[-1].params["text"]
