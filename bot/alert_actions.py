"""What an alert shows and offers beyond the review: who made the post, their earlier confirmed flags, what was
done about it, and the action buttons (delete the post, ban the sender) the bot can honour in that chat.

The bot's rights in a chat come from ``getChatMember`` for itself, cached for BOT_RIGHTS_CACHE_SECONDS
(:class:`RightsCache`); a button the bot cannot honour is not shown. Action button data is signed like the
review buttons' and stays within Telegram's 64 bytes: ``ac:<flag id>:<action letter>:<signature>``. A first
press turns the button into "Press again to delete", whose data is ``ac:<flag id>:<LETTER>:<armed at>:<signature>``
(upper case, and the time it was armed in base 36): only that button, pressed within ARM_SECONDS, carries the
action out (bot/moderation_actions.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from telegram import ChatMember, InlineKeyboardButton
from telegram.error import NetworkError, RetryAfter, TelegramError

from bot.action_log import done, flag_actions
from bot.actors import post_actors
from bot.alerts import MAX_CALLBACK_DATA, AlertView, chat_name, code, excerpt, fmt_time
from bot.offenders import actor_name, history, history_text
from bot.storage import Storage

log = logging.getLogger(__name__)

CODES = {"d": "delete", "b": "ban", "r": "ban_revoke"}
LETTERS = {action: letter for letter, action in CODES.items()}
BUTTONS = {"delete": "🗑 Delete post", "ban": "🚫 Ban sender", "ban_revoke": "🧹 Ban + wipe messages"}
ARMED = {
    "delete": "⚠️ Press again to delete",
    "ban": "⚠️ Press again to ban",
    "ban_revoke": "⚠️ Press again to ban + wipe",
}
MAX_ACTION_FLAGS = 3  # rows of action buttons under one alert: one per chat, for the first chats
MAX_LOG_LINES = 4  # actions shown per flag, the latest
# An armed button left alone for longer only arms again: a slip of the thumb hours later must not act.
ARM_SECONDS = 120
GROUPS = ("group", "supergroup")


# -- callback data ------------------------------------------------------------------------------------


def encode_action(secret: bytes, flag_id: int, action: str, *, armed_at: float | None = None) -> str:
    """A button's data; ``armed_at`` (epoch seconds) makes it the "Press again" button armed then."""
    body = f"ac:{flag_id}:{LETTERS[action]}"
    if armed_at is not None:
        body = f"ac:{flag_id}:{LETTERS[action].upper()}:{_base36(int(armed_at))}"
    data = f"{body}:{_sign(secret, body)}"
    assert len(data.encode()) <= MAX_CALLBACK_DATA
    return data


def decode_action(secret: bytes, data: str | None) -> tuple[int, str, int | None] | None:
    """(flag id, action, when it was armed or None) of genuine action data; None for anything malformed or forged."""
    if not data or len(data.encode()) > MAX_CALLBACK_DATA:
        return None
    parts = data.split(":")
    if len(parts) not in (4, 5) or parts[0] != "ac" or parts[2].lower() not in CODES or not parts[1].isdigit():
        return None
    armed = len(parts) == 5
    if armed != parts[2].isupper() or (armed and not parts[3].isalnum()):
        return None
    if not hmac.compare_digest(parts[-1], _sign(secret, ":".join(parts[:-1]))):
        return None
    return int(parts[1]), CODES[parts[2].lower()], int(parts[3], 36) if armed else None


def _base36(n: int) -> str:
    digits = ""
    while True:
        n, digit = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
        if not n:
            return digits


def _sign(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:16]


# -- the bot's rights in a chat -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rights:
    """What the bot may do in a chat; ``problem`` is Telegram's answer when it would not even say."""

    can_delete: bool = False
    can_restrict: bool = False
    status: str | None = None
    problem: str | None = None
    unknown: bool = False  # Telegram could not be asked just now (network, flood control): ask again next time

    def summary(self) -> str | None:
        """Why no action button shows, or None when some can (or it is not known)."""
        if self.unknown:
            return None
        if self.problem:
            return f"the bot cannot act in this chat (Telegram: {self.problem})"
        if self.status in (ChatMember.LEFT, ChatMember.BANNED):
            return "the bot is no longer in this chat"
        if not (self.can_delete or self.can_restrict):
            return "the bot is not an admin allowed to delete messages or ban users here"
        return None


def rights_of(member: ChatMember) -> Rights:
    if member.status == ChatMember.OWNER:
        return Rights(True, True, member.status)
    if member.status == ChatMember.ADMINISTRATOR:
        return Rights(bool(member.can_delete_messages), bool(member.can_restrict_members), member.status)
    return Rights(status=member.status)


class RightsCache:
    """The bot's rights per chat, asked of Telegram at most once per ``ttl`` seconds per chat."""

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._known: dict[int, tuple[float, Rights]] = {}

    def peek(self, chat_id: int) -> Rights | None:
        found = self._known.get(chat_id)
        return found[1] if found and self.clock() - found[0] < self.ttl else None

    def forget(self, chat_id: int) -> None:
        self._known.pop(chat_id, None)

    async def get(self, bot, chat_id: int) -> Rights:
        rights = self.peek(chat_id)
        if rights is not None:
            return rights
        try:
            rights = rights_of(await bot.get_chat_member(chat_id, bot.id))
        except (NetworkError, RetryAfter) as exc:
            log.info("rights of the bot in chat %d not known now: %s", chat_id, exc)
            return Rights(unknown=True)
        except TelegramError as exc:  # the chat is gone, the bot was removed, or Telegram failed
            log.info("rights of the bot in chat %d unknown: %s", chat_id, exc)
            rights = Rights(problem=str(exc.message))
        self._known[chat_id] = (self.clock(), rights)
        return rights


# -- who acted on the flag, and what may still be done ----------------------------------------------


def ban_target(actors: dict | None) -> tuple[str, int] | None:
    """("user", id) or ("channel", id): whom "Ban sender" would ban; None when there is no one to ban."""
    if actors is None:
        return None
    if actors["sender_kind"] == "user" and actors["user_id"] is not None:
        return "user", actors["user_id"]
    if actors["sender_kind"] == "channel" and actors["sender_chat_id"] is not None:
        return "channel", actors["sender_chat_id"]
    return None


def possible_actions(flag: dict, actors: dict | None, rights: Rights | None, log_rows: list[dict]) -> list[str]:
    """The actions a button may offer for this flag now: the bot has the rights, and they are not done yet."""
    if rights is None or rights.problem or rights.unknown:
        return []
    found = []
    if rights.can_delete and not done(log_rows, "delete"):
        found.append("delete")
    target = ban_target(actors)
    if flag.get("chat_type") in GROUPS and rights.can_restrict and target and not done(log_rows, "ban", "ban_revoke"):
        found.append("ban")
        if target[0] == "user":  # revoke_messages exists for users only (banChatMember)
            found.append("ban_revoke")
    return found


def who(row: dict) -> str:
    if row["actor_id"] is None:
        return "the bot"
    return f"{code(row['actor_name']) or 'a moderator'} (id {row['actor_id']})"


DONE_TEXT = {
    "delete": "🗑 Post deleted",
    "ban": "🚫 Sender banned",
    "ban_revoke": "🧹 Sender banned and their messages deleted",
}


def action_line(row: dict) -> str:
    when = fmt_time(row["at"])
    if row["outcome"] == "dry_run":
        return f"🧪 Dry run: the bot would have deleted this post at {when} ({escape(row['telegram_answer'] or '')})"
    if row["outcome"] == "done":
        return f"{DONE_TEXT[row['action']]} by {who(row)} at {when}"
    verb = {"delete": "delete the post", "ban": "ban the sender", "ban_revoke": "ban the sender"}[row["action"]]
    answer = excerpt(row["telegram_answer"] or "no answer", 150)
    return f"⛔ Could not {verb} ({who(row)}, {when}): <code>{escape(answer)}</code>"


def _chat_ref(title: str | None, username: str | None, chat_id: int | None) -> str:
    parts = [f"@{escape(username)}"] if username else []
    return f"{code(title or str(chat_id))} ({', '.join(parts + [f'id {chat_id}'])})"


def sender_lines(actors: dict | None) -> list[str]:
    """Who made the post, one line per actor, with what can (not) be done about them."""
    if actors is None:
        return []
    kind = actors["sender_kind"]
    lines = []
    if kind == "user":
        person = {"name": actors["user_name"], "username": actors["username"], "actor_id": actors["user_id"]}
        name = actor_name(person, html=True)
        lines.append(f"👤 Sent by {name}" + ("" if actors["username"] else " · no username"))
    elif kind == "channel":
        title = _chat_ref(actors["sender_chat_title"], actors["sender_chat_username"], actors["sender_chat_id"])
        lines.append(f"📣 Posted as the channel {title}")
    elif kind == "anonymous_admin":
        lines.append("👤 Sent by an anonymous admin of the group: there is no one to ban")
    elif kind == "linked_channel":
        title = _chat_ref(actors["sender_chat_title"], actors["sender_chat_username"], actors["sender_chat_id"])
        lines.append(f"🔗 Copied in from the linked channel {title}: it is not banned here, act in the channel")
    elif kind == "unknown":
        lines.append("👤 Telegram did not say who sent it")
    if actors["forward_chat_id"] is not None:
        title = _chat_ref(actors["forward_chat_title"], actors["forward_chat_username"], actors["forward_chat_id"])
        lines.append(f"↪ Forwarded from {title}")
    return lines


def history_lines(storage: Storage, actors: dict | None, alert_id: int | None) -> list[str]:
    """Earlier confirmed flags of the post's sender and source channels (outside this alert)."""
    if actors is None:
        return []
    seen, lines = set(), []
    for kind, actor_id, whom in (
        ("user", actors["user_id"], "The sender has"),
        ("channel", actors["sender_chat_id"] if actors["sender_kind"] != "channel_post" else None, "The channel has"),
        ("channel", actors["sender_chat_id"] if actors["sender_kind"] == "channel_post" else None, "This channel has"),
        ("channel", actors["forward_chat_id"], "The source channel has"),
    ):
        if actor_id is None or (kind, actor_id) in seen:
            continue
        seen.add((kind, actor_id))
        found = history(storage, kind, actor_id, alert_id)
        if found:
            lines.append(f"⚠️ {whom} {history_text(found)}")
    return lines


class AlertActions:
    """The alert extras (bot/alerts.py ``AlertExtras``) of the live bot: notes and action buttons per flag."""

    def __init__(self, storage: Storage, rights: RightsCache, secret: Callable[[], bytes]):
        self.storage, self.rights, self.secret = storage, rights, secret

    async def prepare(self, bot, alerts: list[dict]) -> None:
        """Know the bot's rights in the chats of a single alert's first flags before it is rendered."""
        if len(alerts) != 1:
            return  # a batch of alerts shows no action buttons
        for flag in self.storage.alert_flags(alerts[0]["id"])[:MAX_ACTION_FLAGS]:
            await self.rights.get(bot, flag["chat_id"])

    def _state(self, flag: dict) -> tuple[dict | None, list[dict], Rights | None]:
        chat = self.storage.chat(flag["chat_id"])
        left = chat is not None and chat["status"] == "left"  # told by my_chat_member (bot/membership.py)
        return (
            post_actors(self.storage.db, flag["chat_id"], flag["message_id"]),
            flag_actions(self.storage, flag["id"]),
            Rights(status=ChatMember.LEFT) if left else self.rights.peek(flag["chat_id"]),
        )

    def notes(self, view: AlertView, max_flags: int) -> list[str]:
        lines = []
        many = len(view.flags) > 1
        for flag in view.flags[: min(max_flags, MAX_ACTION_FLAGS)]:
            actors, log_rows, rights = self._state(flag)
            flag_lines = sender_lines(actors) + history_lines(self.storage, actors, view.alert["id"])
            flag_lines += [action_line(r) for r in log_rows[-MAX_LOG_LINES:]]
            if rights is not None and rights.summary() and not done(log_rows, "delete"):
                flag_lines.append(f"ℹ️ No action buttons: {escape(rights.summary())}")
            prefix = f"{code(excerpt(chat_name(flag), 30))}: " if many else ""
            lines += [prefix + line for line in flag_lines]
        return lines

    def buttons(self, view: AlertView) -> list[list[InlineKeyboardButton]]:
        rows = []
        many = len(view.flags) > 1
        for flag in view.flags[:MAX_ACTION_FLAGS]:
            actors, log_rows, rights = self._state(flag)
            suffix = f" · {excerpt(chat_name(flag), 12)}" if many else ""
            row = [
                InlineKeyboardButton(
                    BUTTONS[action] + suffix, callback_data=encode_action(self.secret(), flag["id"], action)
                )
                for action in possible_actions(flag, actors, rights, log_rows)
            ]
            if row:
                rows.append(row)
        return rows
