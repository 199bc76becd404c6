"""Who made a post: the user who sent it, the channel it was posted as, the channel it was forwarded from.

A compliance team thinks in actors, not posts. Every live post records its actors (:class:`Actors`, read by
:func:`actors_from_message`) in the ``post_actors`` table beside the post, under the same retention as the
post's text: a benign post keeps them only when STORE_BENIGN_TEXT is on (:func:`store_actors`).

``sender_kind`` says what the sender is, because each kind is acted on differently:

- ``user``: a person (or a bot); the one a "Ban sender" ban falls on (``banChatMember``);
- ``channel``: a group post made as a channel (``sender_chat``); banned with ``banChatSenderChat``;
- ``anonymous_admin``: an anonymous admin of the group (the group itself is the sender): nobody to ban;
- ``linked_channel``: the channel linked to a discussion group, whose posts Telegram copies in
  automatically: banning it in its own discussion group makes no sense;
- ``channel_post``: a post of a watched channel, whose author is the channel itself;
- ``unknown``: none of the above (Telegram sent no sender).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from classifier import safe_text

if TYPE_CHECKING:  # bot.post imports this module: sources that read files should not load PTB for a dataclass
    from telegram import Message

SENDER_KINDS = ("user", "channel", "anonymous_admin", "linked_channel", "channel_post", "unknown")


@dataclass(frozen=True)
class Actors:
    """The actors of one post; any of them may be unknown (None)."""

    sender_kind: str = "unknown"
    user_id: int | None = None
    username: str | None = None
    user_name: str | None = None
    sender_chat_id: int | None = None
    sender_chat_title: str | None = None
    sender_chat_username: str | None = None
    forward_chat_id: int | None = None
    forward_chat_title: str | None = None
    forward_chat_username: str | None = None


def _id(value) -> int | None:
    """An id as Telegram sends it, or None for anything else (a hostile webhook body may send anything)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    return safe_text(value)[:256] if isinstance(value, str) and value else None


def actors_from_message(message: Message) -> Actors:
    """The actors of a live message, as far as Telegram tells them."""
    chat, sender_chat, user = message.chat, message.sender_chat, message.from_user
    if chat.type == "channel":
        kind, sender_chat = "channel_post", sender_chat or chat
    elif sender_chat is not None and sender_chat.id == chat.id:
        kind, user = "anonymous_admin", None  # from_user is Telegram's placeholder bot, not a person
    elif sender_chat is not None:
        kind = "linked_channel" if message.is_automatic_forward else "channel"
    elif user is not None:
        kind = "user"
    else:
        kind = "unknown"
    if sender_chat is not None and kind != "channel_post":
        user = None  # a post made as a channel: from_user is a placeholder (@Channel_Bot)
    origin = message.forward_origin
    kind_of_origin = getattr(origin, "type", None)
    forwarded = origin.chat if kind_of_origin == "channel" else origin.sender_chat if kind_of_origin == "chat" else None
    return Actors(
        sender_kind=kind,
        user_id=_id(user.id) if user else None,
        username=_text(user.username) if user else None,
        user_name=_text(user.full_name) if user else None,
        sender_chat_id=_id(sender_chat.id) if sender_chat is not None and kind != "anonymous_admin" else None,
        sender_chat_title=_text(sender_chat.title) if sender_chat is not None and kind != "anonymous_admin" else None,
        sender_chat_username=_text(sender_chat.username)
        if sender_chat is not None and kind != "anonymous_admin"
        else None,
        forward_chat_id=_id(forwarded.id) if forwarded else None,
        forward_chat_title=_text(forwarded.title) if forwarded else None,
        forward_chat_username=_text(forwarded.username) if forwarded else None,
    )


_FIELDS = [f.name for f in fields(Actors)]
_INSERT = (
    f"INSERT OR REPLACE INTO post_actors (chat_id, message_id, {', '.join(_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(_FIELDS) + 2))})"
)


def store_actors(db, chat_id: int, message_id: int, actors: Actors | None, *, keep: bool) -> None:
    """Record (or forget) a post's actors, inside the caller's transaction. ``keep`` follows the post's text:
    a benign post that keeps no text keeps no actors either, and an edit that made a post benign forgets them."""
    if not keep:
        db.execute("DELETE FROM post_actors WHERE chat_id = ? AND message_id = ?", [chat_id, message_id])
        return
    if actors is None:
        return  # a source that knows no actors (an export, a JSONL file) leaves what is stored as it is
    # Named fields rather than dataclasses.asdict, which deep-copies: this runs for every post stored.
    db.execute(_INSERT, [chat_id, message_id, *(getattr(actors, name) for name in _FIELDS)])


def post_actors(db, chat_id: int, message_id: int) -> dict | None:
    return next(db.query("SELECT * FROM post_actors WHERE chat_id = ? AND message_id = ?", [chat_id, message_id]), None)


def sender_text(actors: dict | None) -> str | None:
    """Who made a post, as plain text (for exports): `user Sam Spam (@sam_spam, id 4242)`, `channel …`, with the
    channel it was forwarded from."""
    if actors is None:
        return None
    kind = actors["sender_kind"]
    if actors["user_id"] is not None:
        text = f"user {_ref(actors['user_name'], actors['username'], actors['user_id'])}"
    elif actors["sender_chat_id"] is not None:
        where = {"linked_channel": "linked channel", "channel_post": "the channel itself"}.get(kind, "channel")
        text = f"{where} {_ref(actors['sender_chat_title'], actors['sender_chat_username'], actors['sender_chat_id'])}"
    else:
        text = {"anonymous_admin": "an anonymous group admin"}.get(kind, "unknown")
    if actors["forward_chat_id"] is not None:
        ref = _ref(actors["forward_chat_title"], actors["forward_chat_username"], actors["forward_chat_id"])
        text += f", forwarded from {ref}"
    return text


def _ref(name: str | None, username: str | None, actor_id: int) -> str:
    return f"{name or ''} ({'@' + username + ', ' if username else ''}id {actor_id})".lstrip()
