"""Optional automatic deletion of flagged posts, off by default and set per chat by a moderator.

``/autodelete <chat> on [threshold] [dry]`` turns it on for one chat: from then on, every new flag there whose
probability reaches the threshold (0.95 unless given) has its post deleted by the bot, logged as made by the bot
(bot/action_log.py, actor NULL) and shown in its alert. In a dry run the bot only says, in the alert and the
digest, what it would have deleted. Flags from before it was turned on are left to the moderators, and so is a
flag a moderator marked as a false positive.
"""

from __future__ import annotations

import logging
import sqlite3

from bot.action_log import ActionRecord, record_action
from bot.moderation_actions import carry_out
from bot.services import BotContext
from bot.storage import Storage

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.95
MIN_THRESHOLD = 0.5  # below it the model's own "benign" is likelier than the label: deleting would be a guess
MAX_PER_ROUND = 50  # deletions per job round; the rest wait for the next round


def set_rule(storage: Storage, chat_id: int, threshold: float, dry_run: bool, set_by: int | None) -> None:
    with storage.transaction():
        storage.db.execute(
            "INSERT OR REPLACE INTO autodelete_chats (chat_id, threshold, dry_run, set_by, set_at) VALUES (?, ?, ?, ?, ?)",
            [chat_id, threshold, int(dry_run), set_by, storage.clock()],
        )


def clear_rule(storage: Storage, chat_id: int) -> bool:
    with storage.transaction():
        return storage.db.execute("DELETE FROM autodelete_chats WHERE chat_id = ?", [chat_id]).rowcount > 0


def rules(storage: Storage) -> list[dict]:
    return list(
        storage.db.query(
            """SELECT a.*, c.title, c.username, c.type FROM autodelete_chats a LEFT JOIN chats c ON c.id = a.chat_id
               ORDER BY c.title, a.chat_id"""
        )
    )


def candidates(storage: Storage, limit: int = MAX_PER_ROUND) -> list[dict]:
    """Flags the rules say to delete and that nobody has acted on: new since the rule was set, at or above its
    threshold, not judged a false positive nor withdrawn, with no deletion done or tried by the bot."""
    return list(
        storage.db.query(
            """SELECT f.*, a.threshold, a.dry_run FROM flags f JOIN autodelete_chats a ON a.chat_id = f.chat_id
               WHERE f.created_at >= a.set_at AND f.score >= a.threshold
                 AND f.status IN ('pending', 'confirmed', 'relabelled')
                 AND NOT EXISTS (SELECT 1 FROM moderation_actions m WHERE m.flag_id = f.id AND m.action = 'delete'
                                 AND (m.outcome = 'done' OR m.actor_id IS NULL))
               ORDER BY f.id LIMIT ?""",
            [limit],
        )
    )


async def autodelete_job(context: BotContext) -> None:
    """Delete (or, in a dry run, report) the flagged posts the per-chat rules cover."""
    svc = context.services
    try:
        found = candidates(svc.storage)
        for flag in found:
            if flag["dry_run"]:
                note = f"p={flag['score']:.2f} ≥ {flag['threshold']:.2f}"
                record_action(
                    svc.storage, ActionRecord(flag=flag, action="delete", outcome="dry_run", telegram_answer=note)
                )
                log.info(
                    "dry run: would have deleted chat %d message %d (%s)", flag["chat_id"], flag["message_id"], note
                )
            else:
                result = await carry_out(context.bot, svc, flag, "delete", actor_id=None, actor_name=None)
                log.info(
                    "automatic deletion of chat %d message %d: %s", flag["chat_id"], flag["message_id"], result.answer
                )
        if found:
            await svc.outbox.apply_edits(context.bot, svc.secret)
    except sqlite3.Error as exc:
        log.error("automatic deletion skipped: database error %s; retrying next round", exc)
