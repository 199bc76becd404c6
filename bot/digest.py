"""The periodic digest: what was flagged since the last one, what waits for review, what changed."""

from __future__ import annotations

import logging
from collections import Counter
from html import escape

from bot.alerts import LABEL_NAMES, excerpt, fmt_time, post_anchor
from bot.storage import Storage

log = logging.getLogger(__name__)

TOP_POSTS = 5
MAX_CHATS = 15


def build_digest(storage: Storage, start: float, end: float) -> tuple[str, int] | None:
    """The digest text for the period (start, end] and its flag count; None when nothing happened."""
    flags = storage.flags_between(start, end)
    reviews = storage.reviews_between(start, end)
    if not flags and not reviews:
        return None
    by_label = Counter(f["label"] for f in flags)
    by_chat = Counter((f["chat_title"] or str(f["chat_id"])) for f in flags)
    lines = [f"📊 <b>Digest</b> {fmt_time(start) if start else 'start'} → {fmt_time(end)}"]
    label_parts = ", ".join(f"{escape(LABEL_NAMES.get(k, k))} {n}" for k, n in sorted(by_label.items()))
    lines.append(f"Flags: <b>{len(flags)}</b>" + (f" ({label_parts})" if label_parts else "") + _change(storage, len(flags)))
    lines.append(f"Reviews in this period: {reviews} · pending reviews: <b>{storage.count_pending_flags()}</b>")
    if by_chat:
        lines.append("\n<b>By chat</b>")
        lines += [f"• {escape(excerpt(title, 60))}: {n}" for title, n in by_chat.most_common(MAX_CHATS)]
        if len(by_chat) > MAX_CHATS:
            lines.append(f"• … {len(by_chat) - MAX_CHATS} more chats")
    if flags:
        lines.append("\n<b>Top flagged posts</b>")
        for i, f in enumerate(flags[:TOP_POSTS], 1):
            where = post_anchor(f["chat_id"], f["chat_username"], f["message_id"])
            lines.append(f"{i}. {escape(f['label'])} p={f['score']:.2f} · {escape(excerpt(f['chat_title'] or '', 40))} · "
                         f"{where} · {escape(f['status'])}")
    return "\n".join(lines), len(flags)


def _change(storage: Storage, count: int) -> str:
    previous = storage.last_digest()
    if previous is None:
        return ""
    delta = count - previous["flags"]
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return f" — {arrow} {delta:+d} against the previous digest ({previous['flags']})"


def queue_digest(storage: Storage, chat_id: int | None) -> int | None:
    """Queue the digest of everything since the last one; returns its outbox id, or None when there is nothing new."""
    if chat_id is None:
        log.warning("MODERATOR_CHAT_ID is not set: no digest")
        return None
    start = float(storage.get_meta("digest_period_end") or 0.0)
    end = storage.clock()
    built = build_digest(storage, start, end)
    if built is None:
        log.info("nothing new since the last digest; none sent")
        return None
    text, count = built
    outbox_id = storage.record_digest(start, end, count, chat_id, text)
    log.info("digest queued: %d flags since %s", count, fmt_time(start) if start else "start")
    return outbox_id
