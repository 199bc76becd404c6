"""Acting on a flag from its alert: delete the post, ban its sender (optionally wiping their messages).

Only moderators may act. The first press of an action button only turns it into "Press again to …"; the second
carries the action out with the Bot API (``deleteMessage``, ``banChatMember``, ``banChatSenderChat``). Every
outcome, Telegram's refusals included, is appended to the action log (bot/action_log.py) and shown in the
alert, which the outbox edits.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, TelegramError

from bot.action_log import ActionAlreadyRecorded, ActionRecord, action_of_query, done, flag_actions, record_action
from bot.actors import post_actors
from bot.alert_actions import ARM_SECONDS, ARMED, DONE_TEXT, GROUPS, ban_target, decode_action, encode_action
from bot.alerts import fmt_time
from bot.services import BotContext, Services
from classifier import safe_text

log = logging.getLogger(__name__)

ACTION_DATA = "ac:"  # how the callback data of action buttons begins (bot/alert_actions.py), for the handlers' patterns

NO_TARGET = {
    "anonymous_admin": "the post was sent by an anonymous admin of the group: there is no one to ban",
    "linked_channel": "the post was copied in from the group's linked channel, which is not banned in its own group",
    "channel_post": "a channel's post has no sender to ban: the channel itself posted it",
    "unknown": "Telegram did not say who sent the post",
}


@dataclass(frozen=True)
class Outcome:
    outcome: str  # done | refused | already
    answer: str  # for the moderator who pressed


async def on_action(update: Update, context: BotContext) -> None:
    """A press of Delete post / Ban sender / Ban + wipe: arm it on the first press, act on the second."""
    query = update.callback_query
    svc = context.services
    user = query.from_user
    decoded = decode_action(svc.secret, query.data)
    flag = svc.storage.flag(decoded[0]) if decoded is not None else None
    if flag is None:
        log.warning("refused malformed or forged action data %r from user %d", (query.data or "")[:64], user.id)
        await _answer(query, "This button is not valid.")
        return
    if not svc.is_moderator(user.id):
        log.warning("refused action %s on flag %d by non-moderator %d", decoded[1], flag["id"], user.id)
        await _answer(query, "Only moderators can act on flags.")
        return
    _, action, armed_at = decoded
    now = svc.storage.clock()
    if armed_at is None or not 0 <= now - armed_at <= ARM_SECONDS:
        await _arm(query, svc.secret, flag["id"], action, now, expired=armed_at is not None)
        return
    try:
        recorded = action_of_query(svc.storage, query.id)
        if recorded is not None:  # the same press delivered again after a restart: it was carried out once
            await _answer(query, _recorded_answer(recorded), alert=False)
            return
        result = await carry_out(
            context.bot, svc, flag, action, actor_id=user.id, actor_name=safe_text(user.full_name), query_id=query.id
        )
    except sqlite3.Error as exc:
        log.error("action %s on flag %d by %d: database error %s", action, flag["id"], user.id, exc)
        await _answer(query, "The database is unavailable; try again shortly.")
        return
    await _answer(query, result.answer, alert=result.outcome != "done")
    await svc.outbox.apply_edits(context.bot, svc.secret)


async def carry_out(
    bot, svc: Services, flag: dict, action: str, *, actor_id: int | None, actor_name: str | None, query_id=None
) -> Outcome:
    """Ask Telegram to carry the action out (unless it is done already, or cannot be), and log the outcome."""
    storage = svc.storage
    earlier = done(flag_actions(storage, flag["id"]), *(("delete",) if action == "delete" else ("ban", "ban_revoke")))
    if earlier is not None:
        by = earlier["actor_name"] or "the bot"
        return Outcome("already", f"{DONE_TEXT[earlier['action']]} already, by {by} at {fmt_time(earlier['at'])}.")
    chat = storage.chat(flag["chat_id"]) or {}
    actors = post_actors(storage.db, flag["chat_id"], flag["message_id"])
    rights = await svc.actions.rights.get(bot, flag["chat_id"])
    target = ban_target(actors) if action != "delete" else None
    refusal = _refusal(action, chat, actors, rights, target)
    answer = None
    if refusal is None:
        try:
            await _call(bot, flag, action, target)
        except TelegramError as exc:
            refusal = exc.message
            if isinstance(exc, Forbidden):  # the bot was removed or lost its rights: ask again next time
                svc.actions.rights.forget(flag["chat_id"])
            log.info("Telegram refused to %s for flag %d: %s", action, flag["id"], exc.message)
    else:
        answer = f"not attempted: {refusal}"
    outcome = "done" if refusal is None else "refused"
    record = ActionRecord(
        flag=flag,
        action=action,
        outcome=outcome,
        telegram_answer=answer or (refusal if refusal is not None else "ok"),
        actor_id=actor_id,
        actor_name=actor_name,
        target_user_id=target[1] if target and target[0] == "user" else None,
        target_chat_id=target[1] if target and target[0] == "channel" else None,
        callback_query_id=query_id,
    )
    try:
        record_action(storage, record)
    except ActionAlreadyRecorded as exc:
        return Outcome("already", _recorded_answer(exc.row))
    log.info("flag %d: %s %s by %s", flag["id"], action, outcome, actor_id if actor_id is not None else "the bot")
    if refusal is None:
        return Outcome("done", f"{DONE_TEXT[action]}.")
    return Outcome("refused", f"Not done: {refusal}"[:200])


def _refusal(action: str, chat: dict, actors: dict | None, rights, target) -> str | None:
    """Why the bot will not even ask Telegram, or None."""
    if rights.problem or rights.unknown:
        return rights.summary() or "the bot's rights in this chat are not known just now; try again shortly"
    if action == "delete":
        return None if rights.can_delete else "the bot has no right to delete messages in this chat"
    if chat.get("type") not in GROUPS:
        return "senders can be banned in groups only"
    if target is None:
        kind = actors["sender_kind"] if actors is not None else "unknown"
        return NO_TARGET.get(kind, NO_TARGET["unknown"])
    if action == "ban_revoke" and target[0] != "user":
        return "only a user's messages can be deleted with the ban"
    return None if rights.can_restrict else "the bot has no right to ban users in this chat"


async def _call(bot, flag: dict, action: str, target) -> None:
    if action == "delete":
        await bot.delete_message(flag["chat_id"], flag["message_id"])
    elif target[0] == "user":
        await bot.ban_chat_member(flag["chat_id"], target[1], revoke_messages=action == "ban_revoke")
    else:
        await bot.ban_chat_sender_chat(flag["chat_id"], target[1])


def _recorded_answer(row: dict) -> str:
    return f"Already recorded: {row['action']} {row['outcome']}."


async def _arm(query, secret: bytes, flag_id: int, action: str, now: float, *, expired: bool) -> None:
    """Turn the pressed button into its "Press again" form; nothing else happens on a first press (or on a press
    of a "Press again" button armed too long ago)."""
    markup = getattr(query.message, "reply_markup", None)
    if markup is not None:
        data = encode_action(secret, flag_id, action, armed_at=now)
        armed = InlineKeyboardButton(ARMED[action], callback_data=data)
        rows = [[armed if b.callback_data == query.data else b for b in row] for row in markup.inline_keyboard]
        try:
            await query.edit_message_reply_markup(InlineKeyboardMarkup(rows))
        except TelegramError as exc:
            log.info("action button not armed: %s", exc)
    await _answer(query, f"{'That confirmation expired. ' if expired else ''}{ARMED[action]}.", alert=False)


async def _answer(query, text: str, alert: bool = True) -> None:
    try:
        await query.answer(text, show_alert=alert)
    except TelegramError as exc:  # an old query cannot be answered; what was done stands either way
        log.info("callback query not answered: %s", exc)
