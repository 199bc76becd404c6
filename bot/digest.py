"""The periodic digest: what was flagged since the last one, what waits for review, what changed."""

from __future__ import annotations

import logging
from collections import Counter
from html import escape

from bot.alerts import LABEL_NAMES, code, excerpt, fmt_time, post_anchor, post_link
from bot.storage import Storage

log = logging.getLogger(__name__)

TOP_POSTS = 5
MAX_CHATS = 15


def digest_figures(storage: Storage, start: float, end: float) -> dict:
    """What a digest of the period (start, end] reports, for the moderators' chat and the terminal alike."""
    flags = storage.flags_between(start, end)
    previous = storage.last_digest()
    return {
        "start": start, "end": end, "flags": flags,
        "by_label": Counter(f["label"] for f in flags),
        "by_chat": Counter((f["chat_title"] or str(f["chat_id"])) for f in flags),
        "reviews": storage.reviews_between(start, end),
        "pending": storage.count_pending_flags(),
        "previous_flags": previous["flags"] if previous else None,
    }


def build_digest(storage: Storage, start: float, end: float, title: str = "Digest") -> tuple[str, int] | None:
    """The digest text for the period (start, end] and its flag count; None when nothing happened."""
    figures = digest_figures(storage, start, end)
    flags, by_label, by_chat = figures["flags"], figures["by_label"], figures["by_chat"]
    if not flags and not figures["reviews"]:
        return None
    lines = [f"📊 <b>{escape(title)}</b> {fmt_time(start) if start else 'start'} → {fmt_time(end)}"]
    label_parts = ", ".join(f"{escape(LABEL_NAMES.get(k, k))} {n}" for k, n in sorted(by_label.items()))
    lines.append(f"Flags: <b>{len(flags)}</b>" + (f" ({label_parts})" if label_parts else "") + _change(figures))
    lines.append(f"Reviews in this period: {figures['reviews']} · pending reviews: <b>{figures['pending']}</b>")
    if by_chat:
        lines.append("\n<b>By chat</b>")
        lines += [f"• {code(excerpt(title, 60))}: {n}" for title, n in by_chat.most_common(MAX_CHATS)]
        if len(by_chat) > MAX_CHATS:
            lines.append(f"• … {len(by_chat) - MAX_CHATS} more chats")
    if flags:
        lines.append("\n<b>Top flagged posts</b>")
        for i, f in enumerate(flags[:TOP_POSTS], 1):
            where = post_anchor(f["chat_id"], f["chat_username"], f["message_id"])
            lines.append(f"{i}. {escape(f['label'])} p={f['score']:.2f} · {code(excerpt(f['chat_title'] or '', 40))} · "
                         f"{where} · {escape(f['status'])}")
    return "\n".join(lines), len(flags)


def stats_text(storage: Storage, days: float) -> str:
    """The digest's figures over the last ``days`` days, plus posts scanned and flags by status, as plain text."""
    end = storage.clock()
    start = end - days * 86400
    figures = digest_figures(storage, start, end)
    totals = storage.stats(start)
    by_label = ", ".join(f"{LABEL_NAMES.get(k, k)} {n}" for k, n in sorted(figures["by_label"].items())) or "none"
    by_status = ", ".join(f"{k} {n}" for k, n in sorted(totals["by_status"].items())) or "none"
    lines = [f"Last {days:g} days: {fmt_time(start)} → {fmt_time(end)}",
             f"Posts scanned: {totals['posts_scanned']}",
             f"Flags: {len(figures['flags'])} ({by_label})",
             f"Flags by status: {by_status}",
             f"Reviews in this period: {figures['reviews']} · pending reviews (all time): {figures['pending']}"]
    if figures["by_chat"]:
        lines.append("By chat:")
        lines += [f"  {excerpt(title, 60)}: {n}" for title, n in figures["by_chat"].most_common(MAX_CHATS)]
        if len(figures["by_chat"]) > MAX_CHATS:
            lines.append(f"  … {len(figures['by_chat']) - MAX_CHATS} more chats")
    if figures["flags"]:
        lines.append("Top flagged posts:")
        for i, f in enumerate(figures["flags"][:TOP_POSTS], 1):
            link = post_link(f["chat_id"], f["chat_username"], f["message_id"]) or f"post {f['message_id']}"
            lines.append(f"  {i}. {f['label']} p={f['score']:.2f} · {excerpt(f['chat_title'] or str(f['chat_id']), 40)} · "
                         f"{link} · {f['status']}")
    return "\n".join(lines)


def _change(figures: dict) -> str:
    previous = figures["previous_flags"]
    if previous is None:
        return ""
    delta = len(figures["flags"]) - previous
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return f" — {arrow} {delta:+d} against the previous digest ({previous})"


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
