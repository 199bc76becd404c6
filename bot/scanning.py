"""The handler for posts: every channel post and group message, new or edited, is scanned, with the text of its
picture (bot/message_images.py)."""

from __future__ import annotations

import logging

from telegram import Update

from bot.ingest import describe, id_problem, message_text, post_from_message
from bot.message_images import read_message_image
from bot.services import BotContext

log = logging.getLogger(__name__)


async def on_post(update: Update, context: BotContext) -> None:
    """Scan a channel post or group message, new or edited, and store the verdict."""
    message = update.effective_message
    svc = context.services
    if message is None or message.chat.id == svc.moderator_chat_id:
        return  # the moderators' own chat holds alerts and discussion, not posts to scan
    if (problem := id_problem(message)) is not None:
        log.warning("an update with unusable ids was not scanned: %s", problem)
        return
    with svc.scans.preparing():
        image = await read_message_image(message, svc.images)
        text = message_text(message, [image] if image else [])
        if text is None:
            log.info("chat %d message %d: %s, nothing to scan", message.chat.id, message.message_id, describe(message))
            return
        await svc.scans.scan(svc, post_from_message(message, text, from_image=bool(image)))
