"""Moderators' button presses on alerts: check who pressed and what, record the review, show it."""

from __future__ import annotations

import logging
import sqlite3

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.alerts import ACTIONS, DECISION_NAMES, AlertView, decode_callback, render_alert
from bot.outbox import NO_PREVIEW
from bot.services import BotContext
from bot.storage import ReviewAlreadyRecorded
from classifier import safe_text

log = logging.getLogger(__name__)


async def on_review(update: Update, context: BotContext) -> None:
    """Apply a moderator's press of Confirm / False positive / relabel, or refuse it."""
    query = update.callback_query
    svc = context.services
    user = query.from_user
    decoded = decode_callback(svc.secret, query.data)
    if decoded is None or svc.storage.alert(decoded[0]) is None:
        log.warning("refused malformed or forged callback data %r from user %d", (query.data or "")[:64], user.id)
        await _answer(query, "This button is not valid.")
        return
    if not svc.is_moderator(user.id):
        log.warning("refused review of alert %d by non-moderator %d", decoded[0], user.id)
        await _answer(query, "Only moderators can review flags.")
        return
    alert_id, action = decoded
    decision, new_label = ACTIONS[action]
    try:
        touched = svc.storage.record_review(
            alert_id, decision, new_label, user.id, safe_text(user.full_name), callback_query_id=query.id
        )
    except ReviewAlreadyRecorded as exc:
        # The same press delivered again (an update the bot had not confirmed before a restart): it was
        # recorded the first time. Answer it as then, and show the alert as it stands; no second review.
        log.info(
            "alert %d: callback query %s was delivered again; its review is already recorded", alert_id, query.id[:64]
        )
        decision = exc.decision
    except sqlite3.Error as exc:
        log.error("review of alert %d by %d not recorded: database error %s", alert_id, user.id, exc)
        await _answer(query, "The database is unavailable; nothing was recorded. Try again shortly.")
        return
    else:
        log.info("alert %d: %s by %d (%d flags)", alert_id, decision, user.id, touched)
    await _answer(query, f"{DECISION_NAMES.get(decision, decision)}: recorded.", alert=False)
    # The alert message itself is edited through the outbox, which retries if Telegram fails now.
    await svc.outbox.apply_edits(context.bot, svc.secret)
    outbox_row = svc.storage.outbox_row(svc.storage.alert(alert_id)["outbox_id"] or 0)
    pressed = query.message
    if pressed is not None and (outbox_row is None or outbox_row["message_id"] != pressed.message_id):
        # Pressed under a /pending listing: show the decision there too.
        view = AlertView(
            svc.storage.alert(alert_id), svc.storage.alert_flags(alert_id), svc.storage.last_review(alert_id)
        )
        text, markup = render_alert([view], svc.secret)
        try:
            await query.edit_message_text(
                text, parse_mode=ParseMode.HTML, reply_markup=markup, link_preview_options=NO_PREVIEW
            )
        except TelegramError as exc:
            log.info("listing message not edited: %s", exc)


async def _answer(query, text: str, alert: bool = True) -> None:
    try:
        await query.answer(text, show_alert=alert)
    except TelegramError as exc:  # an old query cannot be answered; the decision stands either way
        log.info("callback query not answered: %s", exc)
