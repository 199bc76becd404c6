"""The fake Bot API enforces Telegram's limits, so a test catches a message or a button the real one would refuse."""

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest

from tests.conftest import MODERATOR_CHAT_ID


async def test_messages_over_4096_utf16_units_are_refused(harness):
    bot = harness.app.bot
    await bot.send_message(MODERATOR_CHAT_ID, "x" * 4096)
    await bot.send_message(MODERATOR_CHAT_ID, "😀" * 2048)  # two UTF-16 units each
    # Markup does not count: Telegram measures the text after parsing entities.
    sent = await bot.send_message(MODERATOR_CHAT_ID, "<b>" + "&lt;" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    for text in ("x" * 4097, "😀" * 2049):
        with pytest.raises(BadRequest, match="(?i)message is too long"):
            await bot.send_message(MODERATOR_CHAT_ID, text)
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.edit_message_text("y" * 4097, chat_id=MODERATOR_CHAT_ID, message_id=sent.message_id)
    assert [c.status for c in harness.api.calls_to("sendMessage", ok_only=False)] == [200, 200, 200, 400, 400]


async def test_callback_data_over_64_bytes_is_refused(harness):
    bot = harness.app.bot
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="é" * 32)]])
    too_long = InlineKeyboardMarkup(
        [[InlineKeyboardButton("a", callback_data="a"), InlineKeyboardButton("b", callback_data="é" * 33)]]
    )
    sent = await bot.send_message(MODERATOR_CHAT_ID, "fine", reply_markup=ok)
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(MODERATOR_CHAT_ID, "buttons", reply_markup=too_long)
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.edit_message_text(
            "edited", chat_id=MODERATOR_CHAT_ID, message_id=sent.message_id, reply_markup=too_long
        )
