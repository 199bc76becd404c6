"""Turn a live Telegram message into a :class:`~bot.post.Post` and the text the classifier scans.

A promotion often hides outside the visible text: behind a text link, in a URL button, or in the
channel it was forwarded from. All of these are appended to the visible text, one per line.
"""

from __future__ import annotations

from telegram import (
    Message,
    MessageEntity,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginUser,
)

from bot.actors import actors_from_message
from bot.post import Post, chat_id_problem, message_id_problem, scan_text, shown
from classifier import safe_text


def hidden_parts(message: Message) -> list[str]:
    """URLs behind text links and URL buttons, and the forwarded-from chat: what the reader can reach but not read."""
    parts: list[str] = []
    for entity in list(message.entities or ()) + list(message.caption_entities or ()):
        if entity.type == MessageEntity.TEXT_LINK and entity.url:
            parts.append(entity.url)
    markup = message.reply_markup
    if markup is not None:
        for row in markup.inline_keyboard:
            for button in row:
                if button.url:
                    parts.append(f"{button.text} {button.url}")
    origin = message.forward_origin
    if isinstance(origin, MessageOriginChannel):
        parts.append(_chat_name(origin.chat.title, origin.chat.username))
    elif isinstance(origin, MessageOriginChat):
        parts.append(_chat_name(origin.sender_chat.title, origin.sender_chat.username))
    elif isinstance(origin, MessageOriginUser) and origin.sender_user.username:
        parts.append(f"@{origin.sender_user.username}")
    return [p for p in parts if p]


def message_text(message: Message, images: list[list[str]] | None = None) -> str | None:
    """The visible text or caption, the lines read from its images, and the hidden parts (:func:`bot.post.scan_text`);
    None when there is nothing to read (a sticker)."""
    return scan_text(message.text or message.caption, hidden_parts(message), images or ())


def id_problem(message: Message) -> str | None:
    """Why a live message's ids cannot be stored, or None. Telegram sends valid ids; an update that reached us
    some other way (a webhook caller who holds the secret) may not, and PTB does not check their types."""
    for what, value, problem in (
        ("chat id", message.chat.id, chat_id_problem),
        ("message id", message.message_id, message_id_problem),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{what} {shown(value)} is not a whole number"
        if (found := problem(value)) is not None:
            return found
    return None


def post_from_message(message: Message, text: str, from_image: bool = False) -> Post:
    chat = message.chat
    return Post(
        chat_id=chat.id,
        message_id=message.message_id,
        text=text,
        date=message.date.timestamp() if message.date else None,
        chat_type=chat.type,
        chat_title=_safe(chat.title or chat.full_name),
        chat_username=_safe(chat.username),
        actors=actors_from_message(message),
        from_image=from_image,
    )


def describe(message: Message) -> str:
    """A short name for what a textless message carries, for the log."""
    for kind in (
        "sticker",
        "photo",
        "video",
        "animation",
        "voice",
        "video_note",
        "audio",
        "document",
        "poll",
        "location",
        "contact",
        "dice",
        "new_chat_members",
        "left_chat_member",
        "pinned_message",
    ):
        if getattr(message, kind, None):
            return kind
    return "no text"


def _safe(text: str | None) -> str | None:
    return safe_text(text) if text else text


def _chat_name(title: str | None, username: str | None) -> str:
    return " ".join(x for x in (title, f"@{username}" if username else None) if x)
