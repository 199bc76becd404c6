"""The bot joining and leaving chats: a chat that adds the bot is watched, one that removes it is left."""

from __future__ import annotations

import logging
import sqlite3
from html import escape

from telegram import ChatMember, Update

from bot.alerts import code
from bot.services import BotContext
from classifier import safe_text

log = logging.getLogger(__name__)

PRESENT = {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED}


async def on_my_chat_member(update: Update, context: BotContext) -> None:
    """Mark a chat watched or left when the bot's own membership changes, and tell the moderators."""
    change = update.my_chat_member
    svc = context.services
    chat = change.chat
    was, now = change.old_chat_member.status in PRESENT, change.new_chat_member.status in PRESENT
    svc.actions.rights.forget(chat.id)  # promoted, demoted, removed: the action buttons follow at once
    if was == now or chat.type == chat.PRIVATE:
        return  # a promotion to admin, or a user starting/blocking the bot in private
    status = "watched" if now else "left"
    title = safe_text(chat.title or chat.full_name or str(chat.id))
    try:
        svc.storage.upsert_chat(chat.id, chat.type, title, chat.username, status)
        if svc.moderator_chat_id is not None and chat.id != svc.moderator_chat_id:
            by = safe_text(change.from_user.full_name) if change.from_user else "someone"
            verb = "now watches" if now else "was removed from"
            svc.storage.queue_message(
                "notice",
                svc.moderator_chat_id,
                f"ℹ️ The bot {verb} {code(title)} ({escape(chat.type)}, id {chat.id}), by {code(by)}.",
            )
    except sqlite3.Error as exc:
        log.error("chat %d (%s) could not be marked %s: database error %s", chat.id, title, status, exc)
        return
    log.info("chat %d (%s) is now %s", chat.id, title, status)
