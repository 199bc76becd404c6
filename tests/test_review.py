"""Review buttons: moderators' presses are recorded and shown; anyone else, or forged data, changes nothing."""

import logging

from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U


async def alerted(harness):
    await harness.send(U.channel_post(10, "Presale of $MOON ends Friday"))
    await harness.flush()
    [call] = harness.api.calls_to("sendMessage")
    message = harness.api.messages[(MODERATOR_CHAT_ID, max(k[1] for k in harness.api.messages))]
    buttons = call.params["reply_markup"]["inline_keyboard"][0]
    return message, {b["text"]: b["callback_data"] for b in buttons}


async def test_moderator_confirm_is_recorded_answered_and_shown(harness):
    message, buttons = await alerted(harness)
    await harness.send(U.callback(buttons["✅ Confirm"], U.MODERATOR, message))
    [review] = harness.storage.reviews()
    assert (review["reviewer_id"], review["decision"], review["old_label"], review["new_label"]) == (
        111,
        "confirm",
        "ico",
        "ico",
    )
    assert harness.storage.all_flags()[0]["status"] == "confirmed"
    [answer] = harness.api.calls_to("answerCallbackQuery")
    assert "recorded" in answer.params["text"]
    [edit] = harness.api.calls_to("editMessageText")
    assert edit.params["message_id"] == message["message_id"]
    assert "✅ Confirmed by <code>Mia Mod</code> (id 111) at" in edit.params["text"]


async def test_relabel_changes_the_label(harness):
    message, buttons = await alerted(harness)
    await harness.send(U.callback(buttons["↔ Trading service"], U.MODERATOR, message))
    flag = harness.storage.all_flags()[0]
    assert (flag["label"], flag["status"]) == ("trading_service", "relabelled")
    [edit] = harness.api.calls_to("editMessageText")
    assert "Relabelled to <b>trading_service</b>" in edit.params["text"] and "model said ico" in edit.params["text"]


async def test_a_stranger_is_refused(harness):
    message, buttons = await alerted(harness)
    await harness.send(U.callback(buttons["✅ Confirm"], U.STRANGER, message))
    assert harness.storage.reviews() == [] and harness.storage.all_flags()[0]["status"] == "pending"
    [answer] = harness.api.calls_to("answerCallbackQuery")
    assert answer.params["text"] == "Only moderators can review flags." and answer.params["show_alert"] is True
    assert harness.api.calls_to("editMessageText") == []


async def test_forged_or_malformed_data_is_refused(harness):
    message, buttons = await alerted(harness)
    confirm = buttons["✅ Confirm"]
    forged = [
        confirm.replace("rv:1:", "rv:2:"),
        confirm[:-1] + ("0" if confirm[-1] != "0" else "1"),
        "garbage",
        "rv:1:c",
    ]
    for data in forged:
        await harness.send(U.callback(data, U.MODERATOR, message))
    assert harness.storage.reviews() == []
    answers = harness.api.calls_to("answerCallbackQuery")
    assert [a.params["text"] for a in answers] == ["This button is not valid."] * len(forged)


async def test_pending_listing_buttons_review_the_alert(harness):
    message, _ = await alerted(harness)
    await harness.send(U.command("/pending", {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}))
    listing = harness.api.calls_to("sendMessage")[-1]
    listing_message = harness.api.messages[(MODERATOR_CHAT_ID, max(k[1] for k in harness.api.messages))]
    false_positive = listing.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    await harness.send(U.callback(false_positive, U.MODERATOR, listing_message))
    assert harness.storage.all_flags()[0]["status"] == "false_positive"
    edited = {c.params["message_id"] for c in harness.api.calls_to("editMessageText")}
    assert edited == {message["message_id"], listing_message["message_id"]}  # the alert and the listing


async def test_a_redelivered_press_is_answered_and_recorded_once(harness, caplog):
    """Telegram delivers an update again when the bot did not confirm it (a restart in between): the same
    update id and callback query id. The review log only grows, so the second delivery must not add to it."""
    caplog.set_level(logging.INFO, logger="bot.review")
    message, buttons = await alerted(harness)
    press = U.callback(buttons["✅ Confirm"], U.MODERATOR, message, query_id="4242424242") | {"update_id": 500}
    await harness.send(press)
    await harness.send(press)
    [review] = harness.storage.reviews()
    assert (review["decision"], review["callback_query_id"]) == ("confirm", "4242424242")
    assert harness.storage.all_flags()[0]["status"] == "confirmed"
    answers = [a.params["text"] for a in harness.api.calls_to("answerCallbackQuery")]
    assert answers == ["✅ Confirmed: recorded."] * 2  # the redelivered press is answered as the first was
    assert len(harness.api.calls_to("editMessageText")) == 1
    assert "alert 1: callback query 4242424242 was delivered again; its review is already recorded" in caplog.text
    # A new press is a new review (the latest stands), even of the same button.
    await harness.send(U.callback(buttons["❌ False positive"], U.MODERATOR, message, query_id="4242424243"))
    await harness.send(U.callback(buttons["✅ Confirm"], U.MODERATOR, message, query_id="4242424244"))
    assert [(r["decision"], r["callback_query_id"]) for r in harness.storage.reviews()] == [
        ("confirm", "4242424242"),
        ("false_positive", "4242424243"),
        ("confirm", "4242424244"),
    ]
