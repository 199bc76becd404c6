"""Moderators' commands about actors and actions: /offenders [days] and /autodelete."""

from __future__ import annotations

import math
from html import escape

from telegram import Update

from bot.alerts import code
from bot.autodelete import DEFAULT_THRESHOLD, MIN_THRESHOLD, clear_rule, rules, set_rule
from bot.commands import fit_messages, moderator_only, reply_html
from bot.offenders import offenders as ranked_offenders
from bot.offenders import offenders_text
from bot.services import BotContext
from bot.settings import MAX_STATS_DAYS
from bot.storage import Storage

MAX_OFFENDERS = 30
AUTODELETE_USAGE = (
    "Usage: /autodelete CHAT on [THRESHOLD] [dry] · /autodelete CHAT off · /autodelete (the chats where it is on).\n"
    f"CHAT is a chat id, @username or title from /chats; THRESHOLD from {MIN_THRESHOLD} to 1 "
    f"(default {DEFAULT_THRESHOLD}); dry only says what would be deleted. Example: /autodelete @cryptogems on 0.97 dry"
)


def offenders_days(args: list[str] | None) -> float | None | str:
    """None (all time) without an argument, a whole number of days from 1 to MAX_STATS_DAYS, or "bad"."""
    if not args:
        return None
    try:
        days = int(args[0])
    except ValueError:
        return "bad"
    return days if 1 <= days <= MAX_STATS_DAYS else "bad"


@moderator_only
async def offenders(update: Update, context: BotContext) -> None:
    """Senders and source channels ranked by confirmed flags across all chats."""
    days = offenders_days(context.args)
    if days == "bad":
        await update.effective_message.reply_text(
            f"/offenders takes a whole number of days from 1 to {MAX_STATS_DAYS}, e.g. /offenders 30, "
            "or nothing for all time."
        )
        return
    rows = ranked_offenders(context.services.storage, days, MAX_OFFENDERS)
    for text in fit_messages(offenders_text(rows, days, html=True).split("\n")):
        await reply_html(update, text)


def find_chat(storage: Storage, ref: str) -> tuple[dict | None, str | None]:
    """The known chat a moderator named by id, @username or title; or None and why not."""
    chats = [c for c in storage.chats() if c["type"] != "private"]
    ref = ref.strip()
    if ref.lstrip("-").isdigit():
        found = [c for c in chats if c["id"] == int(ref)]
    elif ref.startswith("@"):
        found = [c for c in chats if (c["username"] or "").casefold() == ref[1:].casefold()]
    else:
        found = [c for c in chats if (c["title"] or "").casefold() == ref.casefold()]
    if len(found) == 1:
        return found[0], None
    if found:
        ids = ", ".join(str(c["id"]) for c in found)
        return None, f"{len(found)} chats are called {ref!r} (ids {ids}): name one by its id."
    return None, f"No chat the bot knows is {ref!r}: /chats lists them (id, @username or title)."


def parse_autodelete(args: list[str]) -> tuple[dict | None, str | None]:
    """{"chat", "on", "threshold", "dry_run"} from /autodelete's words, in any order; or None and why not."""
    switch, threshold, dry_run, rest = None, None, False, []
    for word in args:
        low = word.casefold()
        if low in ("on", "off"):
            switch = low == "on"
        elif low in ("dry", "dry-run", "dryrun"):
            dry_run = True
        elif _number(word) and not word.lstrip("-").isdigit() or low == "1":
            threshold = float(word)
        else:
            rest.append(word)
    if switch is None or not rest:
        return None, AUTODELETE_USAGE
    if threshold is not None and not (MIN_THRESHOLD <= threshold <= 1.0):
        return None, f"The threshold must be from {MIN_THRESHOLD} to 1 (a probability), not {threshold:g}."
    return {"chat": " ".join(rest), "on": switch, "threshold": threshold or DEFAULT_THRESHOLD, "dry_run": dry_run}, None


def _number(word: str) -> bool:
    try:
        return math.isfinite(float(word))
    except ValueError:
        return False


def rule_line(rule: dict) -> str:
    mode = "dry run (only says what it would delete)" if rule["dry_run"] else "deletes"
    return (
        f"• {code(rule['title'] or str(rule['chat_id']))} (id {rule['chat_id']}): p ≥ {rule['threshold']:.2f}, {mode}"
    )


@moderator_only
async def autodelete(update: Update, context: BotContext) -> None:
    """Turn automatic deletion of flagged posts on or off for one chat, or list where it is on."""
    svc = context.services
    if not context.args:
        found = rules(svc.storage)
        text = (
            "\n".join(["<b>Automatic deletion is on in</b>"] + [rule_line(r) for r in found])
            if found
            else ("Automatic deletion is off in every chat.\n" + escape(AUTODELETE_USAGE))
        )
        await reply_html(update, text)
        return
    parsed, problem = parse_autodelete(context.args)
    chat = None
    if parsed is not None:
        chat, problem = find_chat(svc.storage, parsed["chat"])
    if problem is not None:
        await update.effective_message.reply_text(problem)
        return
    name = f"{code(chat['title'] or str(chat['id']))} (id {chat['id']})"
    if not parsed["on"]:
        was_on = clear_rule(svc.storage, chat["id"])
        await reply_html(update, f"Automatic deletion is off in {name}" + ("." if was_on else " (it was not on)."))
        return
    set_rule(svc.storage, chat["id"], parsed["threshold"], parsed["dry_run"], update.effective_user.id)
    rights = await svc.actions.rights.get(context.bot, chat["id"])
    warning = "" if rights.can_delete else f"\n⚠️ For now {escape(rights.summary() or 'the bot may not delete there')}."
    mode = "Dry run: the bot will only say what it would delete" if parsed["dry_run"] else "The bot will delete"
    await reply_html(
        update,
        f"🤖 Automatic deletion is on in {name}. {mode} new posts flagged with p ≥ {parsed['threshold']:.2f}; "
        f"each is logged and shown in its alert.{warning}",
    )


# The handler's name is the command's: moderator_only logs refusals by it.
ACTION_COMMANDS = {"offenders": offenders, "autodelete": autodelete}
