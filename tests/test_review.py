"""Review buttons: moderators' presses are recorded and shown; anyone else, or forged data, changes nothing."""

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
    assert (review["reviewer_id"], review["decision"], review["old_label"], review["new_label"]) == (111, "confirm", "ico", "ico")
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
    forged = [confirm.replace("rv:1:", "rv:2:"), confirm[:-1] + ("0" if confirm[-1] != "0" else "1"), "garbage", "rv:1:c"]
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
