"""How a flag looks in the moderators' chat: alert text, post links, review buttons and their callback data.

Everything that comes from a post (its text, the chat's title, the reasons) is HTML-escaped, and post
text and reasons go inside ``<pre>``/``<code>`` so that Telegram does not turn their URLs, @mentions or
#tags into links: a post must never put a link or markup into the moderators' chat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Protocol

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.image_evidence import image_summary
from bot.settings import TELEGRAM_GROUP_MESSAGES_PER_MINUTE
from classifier import ICO, TRADING_SERVICE, Reason

MAX_MESSAGE = 4096  # Telegram's limit, counted in UTF-16 code units
MAX_CALLBACK_DATA = 64  # bytes
MAX_BATCH = 10  # alerts in one batched message: ten rows of buttons stay usable on a phone
LABEL_NAMES = {ICO: "ICO / token sale", TRADING_SERVICE: "Trading service", "benign": "Benign"}

# One letter per button keeps callback data short: decision and, for a relabel, the new label.
ACTIONS = {
    "c": ("confirm", None),
    "f": ("false_positive", None),
    "i": ("relabel", ICO),
    "t": ("relabel", TRADING_SERVICE),
}
DECISION_NAMES = {"confirm": "✅ Confirmed", "false_positive": "❌ False positive", "relabel": "↔ Relabelled"}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fmt_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def excerpt(text: str | None, limit: int) -> str:
    if not text or limit <= 0:
        return ""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def code(text: str | None) -> str:
    """A chat title or a person's name, escaped inside <code>: in plain text Telegram apps would turn a
    t.me/… or an @handle in it into a link."""
    return f"<code>{escape(text)}</code>" if text else ""


def chat_name(row: dict) -> str:
    """A flag's or a chat's title, or its chat id where it has none."""
    return row.get("chat_title") or str(row["chat_id"])


def post_anchor(flag: dict) -> str:
    """`post 12`, linked to the post where Telegram allows a link. The link is the row's own, made by the
    database (the flag_rows view in bot/storage.py is the one place post links are made)."""
    link = flag["link"]
    return f'<a href="{escape(link)}">post {flag["message_id"]}</a>' if link else f"post {flag['message_id']}"


def chat_line(flag: dict) -> str:
    """`Title (@username) · post 12` with the post linked; the title is escaped, the link is ours."""
    title = code(chat_name(flag))
    if flag.get("chat_username"):
        title += f" (@{escape(flag['chat_username'])})"
    return f"{title} · {post_anchor(flag)}"


def _reasons(reasons_json: str) -> list[Reason]:
    return [Reason(**r) for r in json.loads(reasons_json or "[]")]


def reason_texts(reasons_json: str, limit: int) -> list[str]:
    reasons = _reasons(reasons_json)[:limit]
    return [f"<code>{escape(excerpt(str(r), 80))}</code>" for r in reasons]


# -- callback data ------------------------------------------------------------------------------------


def encode_callback(secret: bytes, alert_id: int, action: str) -> str:
    """`rv:<alert>:<action>:<signature>`; the signature makes forged button data detectable."""
    body = f"rv:{alert_id}:{action}"
    data = f"{body}:{_sign(secret, body)}"
    assert len(data.encode()) <= MAX_CALLBACK_DATA
    return data


def decode_callback(secret: bytes, data: str | None) -> tuple[int, str] | None:
    """The alert id and action letter of genuine review data, or None for anything malformed or forged."""
    if not data or len(data.encode()) > MAX_CALLBACK_DATA:
        return None
    parts = data.split(":")
    if len(parts) != 4 or parts[0] != "rv" or parts[2] not in ACTIONS or not parts[1].isdigit():
        return None
    body = ":".join(parts[:3])
    if not hmac.compare_digest(parts[3], _sign(secret, body)):
        return None
    return int(parts[1]), parts[2]


def _sign(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:16]


def review_buttons(secret: bytes, alert_id: int, label: str, *, compact: bool = False) -> list[InlineKeyboardButton]:
    other = TRADING_SERVICE if label == ICO else ICO
    suffix = f" #{alert_id}" if compact else ""
    return [
        InlineKeyboardButton(
            f"✅ Confirm{suffix}" if not compact else f"✅{suffix}",
            callback_data=encode_callback(secret, alert_id, "c"),
        ),
        InlineKeyboardButton(
            f"❌ False positive{suffix}" if not compact else f"❌{suffix}",
            callback_data=encode_callback(secret, alert_id, "f"),
        ),
        InlineKeyboardButton(
            f"↔ {LABEL_NAMES[other]}{suffix}" if not compact else f"↔ {other}{suffix}",
            callback_data=encode_callback(secret, alert_id, "i" if other == ICO else "t"),
        ),
    ]


# -- alert text ---------------------------------------------------------------------------------------


@dataclass
class AlertView:
    """An alert with what it takes to render it."""

    alert: dict
    flags: list[dict]
    last_review: dict | None = None


def status_line(view: AlertView) -> str:
    live = [f for f in view.flags if f["status"] != "withdrawn"]
    if not view.flags:
        return "<i>Superseded: the post was edited since; see the newer alert.</i>"
    if not live:
        return "<i>Withdrawn: the post was edited and no longer reads as promotion.</i>"
    review = view.last_review
    if review is None or all(f["status"] == "pending" for f in live):
        return "<i>Pending review</i>"
    who = code(review.get("reviewer_name")) or "moderator"
    decision = DECISION_NAMES.get(review["decision"], escape(review["decision"]))
    if review["decision"] == "relabel":
        decision += f" to <b>{escape(review['new_label'])}</b>"
    return f"{decision} by {who} (id {review['reviewer_id']}) at {fmt_time(review['at'])}"


class AlertExtras(Protocol):
    """More for a single alert than the review needs (bot/alert_actions.py): note lines before its status line and
    rows of buttons under the review buttons. Batched alerts show none."""

    def notes(self, view: AlertView, max_flags: int) -> list[str]: ...

    def buttons(self, view: AlertView) -> list[list[InlineKeyboardButton]]: ...


def _alert_block(
    view: AlertView, *, excerpt_chars: int, max_chats: int, max_reasons: int, heading: str, notes: list[str] = ()
) -> str:
    flags = view.flags
    label = view.alert["label"]
    score = max((f["score"] for f in flags), default=0.0)
    lines = [f"{heading}<b>{escape(LABEL_NAMES.get(label, label))}</b> · p={score:.2f}"]
    model_label = max(json.loads(flags[0]["scores"]).items(), key=lambda kv: kv[1])[0] if flags else label
    if model_label != label:  # relabelled by a moderator: the probability is the model's, for its own label
        lines[0] += f" (model said {escape(model_label)})"
    for flag in flags[:max_chats]:
        lines.append("📍 " + chat_line(flag))
    if len(flags) > max_chats:
        lines.append(f"… and {len(flags) - max_chats} more chats with the same text")
    text = next((f["text"] for f in flags if f.get("text")), None)
    if excerpt_chars and text:
        lines.append(f"<pre>{escape(excerpt(text, excerpt_chars))}</pre>")
    if flags and max_reasons:
        reasons = reason_texts(flags[0]["reasons"], max_reasons)
        if reasons:
            lines.append("Why: " + " · ".join(reasons))
    lines.extend(notes)
    if flags and excerpt_chars and (seen := image_summary(text, _reasons(flags[0]["reasons"]), html=True)):
        lines.append(seen)  # what the post showed in its picture, and which reasons came from it
    lines.append(status_line(view))
    return "\n".join(lines)


def render_alert(
    views: list[AlertView],
    secret: bytes,
    per_minute: int = TELEGRAM_GROUP_MESSAGES_PER_MINUTE,
    extras: AlertExtras | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """One message for one alert, or a batch of alerts when they arrived faster than ``per_minute`` (the
    ALERTS_PER_MINUTE setting) lets us send them one by one."""
    batch = len(views) > 1
    # Shrink excerpts, reasons and chat lists until the message fits; the last tier always fits
    # (titles are at most 128 characters and a batch holds at most MAX_BATCH alerts).
    for excerpt_chars, max_reasons, max_chats in ((700, 5, 10), (300, 3, 5), (120, 2, 3), (0, 0, 1)):
        if batch:
            blocks = [f"🚩 <b>{len(views)} flags</b> (batched: they came faster than {per_minute} alerts a minute)"]
            blocks += [
                _alert_block(
                    v,
                    excerpt_chars=excerpt_chars // 2,
                    max_chats=min(max_chats, 3),
                    max_reasons=max_reasons,
                    heading=f"<b>#{v.alert['id']}</b> ",
                )
                for v in views
            ]
        else:
            blocks = [
                _alert_block(
                    views[0],
                    excerpt_chars=excerpt_chars,
                    max_chats=max_chats,
                    max_reasons=max_reasons,
                    heading="🚩 ",
                    notes=extras.notes(views[0], max_chats) if extras is not None and views[0].flags else [],
                )
                + f"\n<i>alert #{views[0].alert['id']}</i>"
            ]
        text = "\n\n".join(blocks)
        if utf16_len(text) <= MAX_MESSAGE:
            break
    rows = [review_buttons(secret, v.alert["id"], v.alert["label"], compact=batch) for v in views if v.flags]
    if extras is not None and not batch and views[0].flags:
        rows += extras.buttons(views[0])
    return text, InlineKeyboardMarkup(rows)
