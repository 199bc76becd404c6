"""End to end: the real `compliance-bot run`, the real model, the fake Bot API over HTTP: a promotion in a group is
deleted and its sender banned through the alert's buttons; the sender's next promotion elsewhere says so;
/offenders lists them."""

from __future__ import annotations

import pytest

from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U
from tests.test_app_e2e import PROMO, alerts_sent, db_rows, wait_for

pytestmark = pytest.mark.slow

SPAMMER = {"id": 4242, "is_bot": False, "first_name": "Sam", "last_name": "Spam", "username": "sam_spam"}
GROUP2 = {"id": -1006666666666, "type": "supergroup", "title": "Second chat"}
MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}


def alert_message(server, n: int = 0) -> dict:
    """The n-th message the bot sent to the moderators' chat, as the fake holds it now (edits included)."""
    return server.api.messages[
        (MODERATOR_CHAT_ID, sorted(k[1] for k in server.api.messages if k[0] == MODERATOR_CHAT_ID)[n])
    ]


def button(message: dict, prefix: str) -> str:
    return next(
        b["callback_data"]
        for row in message["reply_markup"]["inline_keyboard"]
        for b in row
        if b["text"].startswith(prefix)
    )


def press(server, message: dict, data: str, query_id: str) -> None:
    server.api.push_update(U.callback(data, U.MODERATOR, message, query_id=query_id))


def test_delete_and_ban_through_the_buttons_then_the_repeat_offender_is_known(server, run_bot, tmp_path):
    server.api.set_member(U.GROUP["id"])
    server.api.set_member(GROUP2["id"])
    run_bot()
    server.api.push_update(U.group_message(21, PROMO, user=SPAMMER))
    first = wait_for(lambda: alerts_sent(server), 30, "the first alert")[0]
    assert "👤 Sent by <code>Sam Spam</code> (@sam_spam, id 4242)" in first.params["text"]
    assert "confirmed flag" not in first.params["text"]
    message = alert_message(server)

    # Delete: the first press only arms the button, the second deletes the post.
    press(server, message, button(message, "🗑 Delete post"), "d1")
    wait_for(lambda: "⚠️" in str(alert_message(server)["reply_markup"]), what="the armed button")
    assert server.api.calls_to("deleteMessage") == []
    message = alert_message(server)
    press(server, message, button(message, "⚠️ Press again to delete"), "d2")
    [delete] = wait_for(lambda: server.api.calls_to("deleteMessage"), what="deleteMessage")
    assert (int(delete.params["chat_id"]), int(delete.params["message_id"])) == (U.GROUP["id"], 21)
    wait_for(lambda: "🗑 Post deleted by <code>Mia Mod</code>" in alert_message(server)["text"], what="the edit")

    # Ban the sender, the same way.
    message = alert_message(server)
    press(server, message, button(message, "🚫 Ban sender"), "b1")
    wait_for(lambda: "Press again to ban" in str(alert_message(server)["reply_markup"]), what="armed ban")
    message = alert_message(server)
    press(server, message, button(message, "⚠️ Press again to ban"), "b2")
    [ban] = wait_for(lambda: server.api.calls_to("banChatMember"), what="banChatMember")
    assert (int(ban.params["chat_id"]), int(ban.params["user_id"])) == (U.GROUP["id"], 4242)
    assert str(ban.params.get("revoke_messages")).lower() == "false"
    wait_for(lambda: "🚫 Sender banned by" in alert_message(server)["text"], what="the ban in the alert")
    assert db_rows(tmp_path, "SELECT action, outcome, actor_id FROM moderation_actions ORDER BY id") == [
        ("delete", "done", 111),
        ("ban", "done", 111),
    ]

    # Confirm the flag; the same sender's promotion in a second group mentions it.
    message = alert_message(server)
    press(server, message, button(message, "✅ Confirm"), "c1")
    wait_for(lambda: db_rows(tmp_path, "SELECT status FROM flags") == [("confirmed",)], what="the review")
    server.api.push_update(U.group_message(5, PROMO.replace("$MOON", "$STAR"), GROUP2, user=SPAMMER))
    second = wait_for(lambda: alerts_sent(server)[1:], 30, "the second alert")[0]
    assert "⚠️ The sender has 1 confirmed flag in 1 chat since " in second.params["text"]
    assert "Second chat" in second.params["text"]

    server.api.push_update(U.command("/offenders", MODS, message_id=900))
    reply = wait_for(
        lambda: [c for c in server.api.calls_to("sendMessage") if "Repeat offenders" in c.params["text"]],
        what="the /offenders reply",
    )[0]
    assert (
        "1. 👤 <code>Sam Spam</code> (@sam_spam, id 4242): 1 confirmed flag (ico 1) in 1 chat" in reply.params["text"]
    )
