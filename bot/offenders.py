"""Repeat offenders: the senders and source channels with the most confirmed flags across all watched chats.

The rows come from the ``offender_flags`` view (bot/storage.py, m008): one row per confirmed or relabelled
flag and actor (the user who sent the post, the channel it was posted as, the channel it was forwarded from).
A channel that posts and is forwarded from is one actor. ``/offenders``, ``compliance-bot offenders`` and the
"earlier confirmed flags" line of an alert all read it here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from bot.storage import Storage

KINDS = {"user": "👤", "channel": "📣"}


def offenders(storage: Storage, days: float | None = None, limit: int = 20) -> list[dict]:
    """Actors ranked by confirmed flags (then chats, then the latest), over the last ``days`` days or all time.
    Each row: kind ('user' or 'channel'), actor_id, name, username, flags, ico, trading_service, chats,
    first_seen, last_seen, roles ('sender', 'forwarded_from' or both)."""
    since = storage.clock() - days * 86400 if days else float("-inf")
    ranked = list(
        storage.db.query(
            """SELECT kind, actor_id, COUNT(DISTINCT flag_id) AS flags,
                      COUNT(DISTINCT CASE WHEN label = 'ico' THEN flag_id END) AS ico,
                      COUNT(DISTINCT CASE WHEN label = 'trading_service' THEN flag_id END) AS trading_service,
                      COUNT(DISTINCT chat_id) AS chats, MIN(seen) AS first_seen, MAX(seen) AS last_seen,
                      GROUP_CONCAT(DISTINCT role) AS roles
               FROM offender_flags WHERE seen >= ?
               GROUP BY kind, actor_id
               ORDER BY flags DESC, chats DESC, last_seen DESC, kind DESC, actor_id LIMIT ?""",
            [since, limit],
        )
    )
    # The name and username an actor had most recently, for the few ranked (a window over every row costs more).
    for row in ranked:
        latest = next(
            storage.db.query(
                """SELECT name, username FROM offender_flags WHERE kind = ? AND actor_id = ?
                   ORDER BY seen DESC, flag_id DESC LIMIT 1""",
                [row["kind"], row["actor_id"]],
            )
        )
        row |= latest
    return ranked


def history(storage: Storage, kind: str, actor_id: int, exclude_alert_id: int | None = None) -> dict | None:
    """An actor's confirmed flags outside one alert: flags, chats, since (the first one); None when there are none."""
    row = next(
        storage.db.query(
            """SELECT COUNT(DISTINCT flag_id) AS flags, COUNT(DISTINCT chat_id) AS chats, MIN(seen) AS since
               FROM offender_flags WHERE kind = ? AND actor_id = ? AND alert_id IS NOT ?""",
            [kind, actor_id, exclude_alert_id],
        )
    )
    return row if row["flags"] else None


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


def history_text(found: dict) -> str:
    """`3 confirmed flags in 2 chats since 2026-11-01`."""
    flags, chats = found["flags"], found["chats"]
    return f"{flags} confirmed flag{'s' * (flags != 1)} in {chats} chat{'s' * (chats != 1)} since {day(found['since'])}"


def actor_name(row: dict, *, html: bool) -> str:
    """`Name (@username, id 123)`; the name inside <code> in HTML, where Telegram would link a t.me/… in it."""
    name = row.get("name") or "(no name)"
    shown = f"<code>{escape(name)}</code>" if html else name
    parts = [f"@{escape(row['username']) if html else row['username']}"] if row.get("username") else []
    parts.append(f"id {row['actor_id']}")
    return f"{shown} ({', '.join(parts)})"


def offender_line(rank: int, row: dict, *, html: bool) -> str:
    labels = ", ".join(f"{label} {row[label]}" for label in ("ico", "trading_service") if row[label])
    forwarded = " · forwarded from" if "forwarded_from" in (row.get("roles") or "") else ""
    return (
        f"{rank}. {KINDS.get(row['kind'], '')} {actor_name(row, html=html)}: {row['flags']} confirmed "
        f"flag{'s' * (row['flags'] != 1)} ({labels}) in {row['chats']} chat{'s' * (row['chats'] != 1)}, "
        f"{day(row['first_seen'])} → {day(row['last_seen'])}{forwarded}"
    )


def offenders_text(rows: list[dict], days: float | None, *, html: bool) -> str:
    period = f"the last {days:g} days" if days else "all time"
    if not rows:
        return f"No confirmed flags with a known sender or source channel in {period}."
    heading = f"Repeat offenders, {period}: senders and source channels by confirmed flags"
    heading = f"<b>{heading}</b>" if html else heading
    return "\n".join([heading] + [offender_line(i, row, html=html) for i, row in enumerate(rows, 1)])
