"""The log of actions on flagged posts (delete, ban), kept beside the review log and, like it, append-only.

Every press of an action button that reached Telegram, every refusal (Telegram's or the bot's own, when it
lacks the rights) and every automatic deletion or dry run is one row of ``moderation_actions``: who (the
moderator, or NULL for the bot), when, what, on which post and sender, and Telegram's answer. Datasette
shows it as the ``moderation_log`` view.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage import Storage

ACTIONS = ("delete", "ban", "ban_revoke")
OUTCOMES = ("done", "refused", "dry_run")
ACTION_NAMES = {"delete": "delete the post", "ban": "ban the sender", "ban_revoke": "ban the sender and wipe"}


class ActionAlreadyRecorded(Exception):
    """The same button press (callback query) delivered again: its action is recorded already."""

    def __init__(self, row: dict):
        super().__init__(f"callback query {row['callback_query_id']!r} is recorded already")
        self.row = row


@dataclass(frozen=True)
class ActionRecord:
    """One action to append to the log."""

    flag: dict  # the flags row acted on
    action: str
    outcome: str
    telegram_answer: str | None = None
    actor_id: int | None = None  # None: the bot itself
    actor_name: str | None = None
    target_user_id: int | None = None
    target_chat_id: int | None = None
    callback_query_id: str | None = None


def record_action(storage: Storage, record: ActionRecord) -> int:
    """Append one action and have the flag's alert shown again with it; returns the row id."""
    assert record.action in ACTIONS and record.outcome in OUTCOMES
    flag = record.flag
    row = {
        "flag_id": flag["id"],
        "alert_id": flag["alert_id"],
        "chat_id": flag["chat_id"],
        "message_id": flag["message_id"],
        "action": record.action,
        "target_user_id": record.target_user_id,
        "target_chat_id": record.target_chat_id,
        "actor_id": record.actor_id,
        "actor_name": record.actor_name,
        "outcome": record.outcome,
        "telegram_answer": (record.telegram_answer or None) and record.telegram_answer[:500],
        "callback_query_id": record.callback_query_id,
        "at": storage.clock(),
    }
    with storage.transaction():
        if record.callback_query_id is not None:
            done = action_of_query(storage, record.callback_query_id)
            if done is not None:
                raise ActionAlreadyRecorded(done)
        row_id = storage.db.execute(
            f"INSERT INTO moderation_actions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        ).lastrowid
        storage.mark_alert_for_edit(flag["alert_id"])
    return row_id


def action_of_query(storage: Storage, callback_query_id: str) -> dict | None:
    return next(
        storage.db.query("SELECT * FROM moderation_actions WHERE callback_query_id = ?", [callback_query_id]), None
    )


def flag_actions(storage: Storage, flag_id: int) -> list[dict]:
    """The actions on one flag, oldest first."""
    return list(storage.db.query("SELECT * FROM moderation_actions WHERE flag_id = ? ORDER BY id", [flag_id]))


def actions(storage: Storage) -> list[dict]:
    return list(storage.db.query("SELECT * FROM moderation_actions ORDER BY id"))


def done(rows: list[dict], *kinds: str) -> dict | None:
    """The first action of these kinds that Telegram carried out, if any."""
    return next((r for r in rows if r["action"] in kinds and r["outcome"] == "done"), None)


def automatic_deletions(storage: Storage, start: float, end: float) -> dict[str, int]:
    """The bot's own deletions in the period (start, end], by outcome: done, refused, dry_run (for the digest)."""
    return {
        row["outcome"]: row["n"]
        for row in storage.db.query(
            """SELECT outcome, COUNT(*) AS n FROM moderation_actions
               WHERE actor_id IS NULL AND action = 'delete' AND at > ? AND at <= ? GROUP BY outcome""",
            [start, end],
        )
    }


def action_text(row: dict, when: str | None) -> str:
    """One action as plain text, for exports: `delete done by Mia Mod (111) at 2026-12-01T10:00:00+00:00: ok`."""
    who = "the bot" if row["actor_id"] is None else f"{row['actor_name'] or 'a moderator'} ({row['actor_id']})"
    return f"{row['action']} {row['outcome']} by {who} at {when or '?'}: {row['telegram_answer'] or ''}".rstrip(": ")
