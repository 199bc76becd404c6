"""The periodic digest: what was flagged since the last one, what waits for review, what changed."""

from __future__ import annotations

import logging
from html import escape

from bot.action_log import automatic_deletions
from bot.alerts import LABEL_NAMES, chat_name, code, excerpt, fmt_time, post_anchor
from bot.storage import PeriodFigures, Storage
from bot.watched_channels import lost_channels

log = logging.getLogger(__name__)

TOP_POSTS = 5
MAX_CHATS = 15
MAX_PLATFORMS = 10


def build_digest(storage: Storage, start: float, end: float, title: str = "Digest") -> tuple[str, int] | None:
    """The digest text for the period (start, end] and its flag count; None when nothing happened."""
    figures = storage.period_figures(start, end, top=TOP_POSTS)
    lost = lost_channels(storage, start, end)  # watched public channels that went away in the period
    auto = automatic_deletions(storage, start, end)
    if not figures.flags and not figures.reviews and not lost and not auto:
        return None
    previous = storage.last_digest()
    lines = [f"📊 <b>{escape(title)}</b> {fmt_time(start) if start else 'start'} → {fmt_time(end)}"]
    label_parts = ", ".join(f"{escape(LABEL_NAMES.get(k, k))} {n}" for k, n in sorted(figures.by_label.items()))
    lines.append(
        f"Flags: <b>{figures.flags}</b>"
        + (f" ({label_parts})" if label_parts else "")
        + _change(figures.flags, previous["flags"] if previous else None)
    )
    lines.append(f"Reviews in this period: {figures.reviews} · pending reviews: <b>{figures.pending}</b>")
    if figures.by_platform:
        lines.append(platform_line(figures, html=True).lstrip("\n"))
    if auto:
        lines.append(
            f"🤖 Deleted automatically: {auto.get('done', 0)}"
            + (f" · refused by Telegram: {auto['refused']}" if auto.get("refused") else "")
            + (f" · dry run, would have deleted: {auto['dry_run']}" if auto.get("dry_run") else "")
        )
    if figures.by_chat:
        lines.append("\n<b>By chat</b>")
        lines += [f"• {code(excerpt(chat_name(c), 60))}: {c['flags']}" for c in figures.by_chat[:MAX_CHATS]]
        if len(figures.by_chat) > MAX_CHATS:
            lines.append(f"• … {len(figures.by_chat) - MAX_CHATS} more chats")
    if figures.top:
        lines.append("\n<b>Top flagged posts</b>")
        lines += [
            f"{i}. {escape(f['label'])} p={f['score']:.2f} · {code(excerpt(chat_name(f), 40))} · "
            f"{post_anchor(f)} · {escape(f['status'])}"
            for i, f in enumerate(figures.top, 1)
        ]
    if lost:
        lines.append("\n<b>Watched channels no longer readable</b>")
        lines += [f"• @{escape(c['username'])}: {escape(c['problem'] or c['status'])}" for c in lost]
    return "\n".join(lines), figures.flags


def last_days(storage: Storage, days: float) -> PeriodFigures:
    """The figures of the last ``days`` days, ending now: what `compliance-bot stats` and /stats show."""
    end = storage.clock()
    return storage.period_figures(end - days * 86400, end, top=TOP_POSTS)


def stats_text(storage: Storage, days: float) -> str:
    """The digest's figures over the last ``days`` days, plus posts scanned and flags by status, as plain text."""
    figures = last_days(storage, days)
    start, end = figures.start, figures.end
    by_label = ", ".join(f"{LABEL_NAMES.get(k, k)} {n}" for k, n in sorted(figures.by_label.items())) or "none"
    by_status = ", ".join(f"{k} {n}" for k, n in sorted(figures.by_status.items())) or "none"
    lines = [
        f"Last {days:g} days: {fmt_time(start)} → {fmt_time(end)}",
        f"Posts scanned: {figures.posts_scanned}",
        f"Flags: {figures.flags} ({by_label})",
        f"Flags by status: {by_status}",
        f"Reviews in this period: {figures.reviews} · pending reviews (all time): {figures.pending}",
    ]
    if figures.by_platform:
        lines.append(platform_line(figures).lstrip("\n"))
    if figures.by_chat:
        lines.append("By chat:")
        lines += [f"  {excerpt(chat_name(c), 60)}: {c['flags']}" for c in figures.by_chat[:MAX_CHATS]]
        if len(figures.by_chat) > MAX_CHATS:
            lines.append(f"  … {len(figures.by_chat) - MAX_CHATS} more chats")
    if figures.top:
        lines.append("Top flagged posts:")
        lines += [
            f"  {i}. {f['label']} p={f['score']:.2f} · {excerpt(chat_name(f), 40)} · "
            f"{f['link'] or 'post ' + str(f['message_id'])} · {f['status']}"
            for i, f in enumerate(figures.top, 1)
        ]
    return "\n".join(lines)


def platform_line(figures: PeriodFigures, *, html: bool = False) -> str:
    """Posts per listed platform (and how many of them were flagged), on a line of its own; "" for none."""
    if not figures.by_platform:
        return ""
    parts = [
        f"{escape(p['platform']) if html else p['platform']} {p['posts']}"
        + (f" ({p['flagged']} flagged)" if p["flagged"] else "")
        for p in figures.by_platform[:MAX_PLATFORMS]
    ]
    more = len(figures.by_platform) - MAX_PLATFORMS
    return "\nPosts naming listed platforms: " + ", ".join(parts) + (f", … {more} more" if more > 0 else "")


def _change(flags: int, previous: int | None) -> str:
    if previous is None:
        return ""
    delta = flags - previous
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
