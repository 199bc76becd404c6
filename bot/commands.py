"""Commands: /check for everyone; /stats /recent /pending /chats /export /model /reload for moderators (and
/offenders /autodelete, in bot/action_commands.py)."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import sqlite3
from datetime import datetime, timezone
from html import escape

from telegram import BotCommand, BotCommandScopeChat, InputFile, Message, Update
from telegram.constants import ParseMode

from bot.alerts import (
    MAX_MESSAGE,
    AlertView,
    chat_name,
    code,
    excerpt,
    fmt_time,
    post_anchor,
    render_alert,
    utf16_len,
)
from bot.digest import last_days, platform_line
from bot.flag_export import export_rows, write_export
from bot.image_text import ImageRefused
from bot.ingest import message_text
from bot.message_images import image_file, picture_text
from bot.outbox import NO_PREVIEW
from bot.services import BotContext
from bot.settings import MAX_STATS_DAYS
from bot.storage import Storage
from bot.verdict_text import verdict_text
from bot.watched_channels import add_channels, remove_channels, watched
from bot.watchlist import refresh_in_thread as refresh_watchlist_in_thread

log = logging.getLogger(__name__)

PUBLIC_COMMANDS = [
    BotCommand("start", "What this bot does"),
    BotCommand("help", "Commands and how to check a post"),
    BotCommand("check", "Check a text: /check TEXT, or reply /check to a post"),
]
MODERATOR_COMMANDS = [
    BotCommand("stats", "Flags per label and status: /stats [days]"),
    BotCommand("recent", "Latest flags: /recent [n]"),
    BotCommand("pending", "Flags waiting for review, with buttons"),
    BotCommand("chats", "Watched chats"),
    BotCommand("export", "All flags as a CSV file"),
    BotCommand("model", "Model version and metrics"),
    BotCommand("reload", "Load a retrained model without a restart"),
    BotCommand("watch", "Watch public channels by their web preview: /watch NAME…"),
    BotCommand("unwatch", "Stop watching public channels: /unwatch NAME…"),
    BotCommand("watching", "Public channels watched by their web preview"),
    BotCommand("offenders", "Senders and channels by confirmed flags: /offenders [days]"),
    BotCommand("autodelete", "Automatic deletion per chat: /autodelete CHAT on|off [p] [dry]"),
]
HELP = (
    "I scan the channels and groups I am added to for promotion of ICOs / token sales and of crypto "
    "trading services, and alert the moderators.\n\n"
    "/check TEXT: classify a text; reply /check to a message, or forward a post to me in private.\n"
    "Moderators: /stats [days], /recent [n], /pending, /chats, /export, /model, /reload, "
    "/watch NAME…, /unwatch NAME…, /watching, /offenders [days], /autodelete."
)


async def register_commands(bot, moderator_chat_id: int | None) -> None:
    """Publish the command menu: public commands everywhere, all of them in the moderators' chat."""
    await bot.set_my_commands(PUBLIC_COMMANDS)
    if moderator_chat_id is not None:
        await bot.set_my_commands(PUBLIC_COMMANDS + MODERATOR_COMMANDS, scope=BotCommandScopeChat(moderator_chat_id))


def moderator_only(handler):
    """Refuse politely unless the sender is in MODERATOR_USER_IDS and writes in the moderators' chat or in
    private: in a watched group, /export or /recent would show the flags to everyone there."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: BotContext) -> None:
        user = update.effective_user
        svc = context.services
        if not svc.is_moderator(user.id if user else None):
            chat = update.effective_chat
            log.warning(
                "refused /%s by non-moderator %s in chat %s",
                handler.__name__,
                user.id if user else None,
                chat.id if chat else None,
            )
            await update.effective_message.reply_text("Sorry, that command is for the moderators only.")
            return
        chat = update.effective_chat
        if chat is None or (chat.id != svc.moderator_chat_id and chat.type != chat.PRIVATE):
            log.warning(
                "refused /%s by moderator %d in chat %s: not the moderators' chat nor private",
                handler.__name__,
                user.id,
                chat.id if chat else None,
            )
            await update.effective_message.reply_text(
                "Moderator commands work only in the moderators' chat or in private."
            )
            return
        try:
            await handler(update, context)
        except sqlite3.Error as exc:
            log.error("/%s failed: database error %s", handler.__name__, exc)
            await update.effective_message.reply_text("The database is unavailable right now; try again shortly.")

    return wrapper


async def reply_html(update: Update, text: str, **kwargs) -> None:
    await update.effective_message.reply_text(
        text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW, **kwargs
    )


def int_arg(context, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(context.args[0]))) if context.args else default
    except ValueError:
        return default


async def start(update: Update, context: BotContext) -> None:
    """Greet and explain."""
    await update.effective_message.reply_text(HELP)


async def help_command(update: Update, context: BotContext) -> None:
    """List the commands."""
    await update.effective_message.reply_text(HELP)


async def check(update: Update, context: BotContext) -> None:
    """Classify the text after /check, or the message /check replies to (with the text of its picture)."""
    message = update.effective_message
    text = " ".join(context.args) if context.args else None
    if not text and message.reply_to_message is not None:
        text = await _text_with_picture(update, context, message.reply_to_message)
    if not text:
        await message.reply_text("Send /check followed by a text, or reply /check to a message.")
        return
    await _reply_verdict(update, context, text)


async def check_forwarded(update: Update, context: BotContext) -> None:
    """Classify a post forwarded to the bot in private, or a picture sent to it, with the text of its picture."""
    text = await _text_with_picture(update, context, update.effective_message)
    if not text:
        await update.effective_message.reply_text("That message has no text to check.")
        return
    await _reply_verdict(update, context, text)


async def _text_with_picture(update: Update, context: BotContext, message: Message) -> str | None:
    """The message's text with the text read from its picture. Reading costs seconds of a core, so only
    moderators' pictures are read; anyone else, or a picture that cannot be read, is told why."""
    reader = context.services.images
    if reader is None or image_file(message, reader.max_pixels) is None:
        return message_text(message)
    user = update.effective_user
    if not context.services.is_moderator(user.id if user else None):
        await update.effective_message.reply_text("Only moderators' pictures are read; checking the text alone.")
        return message_text(message)
    try:
        lines = await picture_text(message, reader)
    except ImageRefused as exc:
        await update.effective_message.reply_text(f"The picture was not read: {exc}. Checking the text alone.")
        return message_text(message)
    return message_text(message, [lines] if lines else [])


async def private_hint(update: Update, context: BotContext) -> None:
    """Point a private chatter at /check."""
    await update.effective_message.reply_text(
        "Forward me a post, or send /check TEXT, and I will say whether it promotes."
    )


async def _reply_verdict(update: Update, context: BotContext, text: str) -> None:
    verdict = await asyncio.to_thread(context.services.classifier.predict, text)
    await reply_html(update, verdict_text(verdict, html=True, text=text))


def stats_days(args: list[str] | None) -> int | None:
    """The period /stats is asked for: 7 days by default, or a whole number of days from 1 to
    MAX_STATS_DAYS; None for anything else (1e308, inf, nan, 1000000, a word)."""
    if not args:
        return 7
    try:
        days = int(args[0])
    except ValueError:
        return None
    return days if 1 <= days <= MAX_STATS_DAYS else None


@moderator_only
async def stats(update: Update, context: BotContext) -> None:
    """Flags per label and status over the last n days."""
    days = stats_days(context.args)
    if days is None:
        await update.effective_message.reply_text(
            f"/stats takes a whole number of days from 1 to {MAX_STATS_DAYS}, e.g. /stats 30."
        )
        return
    figures = last_days(context.services.storage, days)
    by_label = ", ".join(f"{escape(k)} {n}" for k, n in sorted(figures.by_label.items())) or "none"
    by_status = ", ".join(f"{escape(k)} {n}" for k, n in sorted(figures.by_status.items())) or "none"
    await reply_html(
        update,
        f"<b>Last {days} days</b>\nPosts scanned: {figures.posts_scanned}\n"
        f"Flags by label: {by_label}\nFlags by status: {by_status}" + platform_line(figures, html=True),
    )


def flag_line(f: dict) -> str:
    return (
        f"#{f['id']} {escape(f['label'])} p={f['score']:.2f} · {code(excerpt(chat_name(f), 40))}"
        f" · {post_anchor(f)} · {escape(f['status'])} · {fmt_time(f['created_at'])}"
    )


@moderator_only
async def recent(update: Update, context: BotContext) -> None:
    """The latest n flags."""
    flags = context.services.storage.recent_flags(int_arg(context, 10, 1, 30))
    await reply_html(update, "\n".join(flag_line(f) for f in flags) if flags else "No flags yet.")


@moderator_only
async def pending(update: Update, context: BotContext) -> None:
    """The review queue: one message with buttons per waiting alert, highest probability first."""
    svc = context.services
    alerts = svc.storage.pending_alerts(10)
    total = svc.storage.count_pending_flags()
    if not alerts:
        await update.effective_message.reply_text("No flags wait for review.")
        return
    await update.effective_message.reply_text(f"{total} flags wait for review; the {len(alerts)} most probable:")
    for a in alerts:
        view = AlertView(svc.storage.alert(a["id"]), svc.storage.alert_flags(a["id"]), svc.storage.last_review(a["id"]))
        text, markup = render_alert([view], svc.secret)
        await reply_html(update, text, reply_markup=markup)


@moderator_only
async def chats(update: Update, context: BotContext) -> None:
    """The chats the bot knows, watched ones first."""
    rows = context.services.storage.chats()
    lines = [
        f"{'👁' if c['status'] == 'watched' else '·'} {code(excerpt(c['title'] or str(c['id']), 50))}"
        f"{' @' + escape(c['username']) if c['username'] else ''} ({escape(c['status'])}) · "
        f"{c['posts']} posts, {c['flags']} flags"
        for c in rows[:MAX_CHATS]
    ]
    await reply_listing(
        update, lines, len(rows), "… and {} more chats", "No chats yet: add the bot to a channel or group."
    )


MAX_CHATS = 100


async def reply_listing(update: Update, lines: list[str], total: int, more: str, empty: str) -> None:
    """Lines of a listing cut at MAX_CHATS (``more`` says how many were left out), in as few messages as fit."""
    if total > len(lines):
        lines = lines + [more.format(total - len(lines))]
    for text in fit_messages(lines) or [empty]:
        await reply_html(update, text)


def fit_messages(lines: list[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join lines into as few messages as fit Telegram's limit (each line is far shorter than it)."""
    messages, current = [], ""
    for line in lines:
        if current and utf16_len(current) + 1 + utf16_len(line) > limit:
            messages.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    return messages + [current] if current else messages


# Telegram takes documents of at most 50 MB from a bot; counted in decimal megabytes to stay under it.
MAX_EXPORT_BYTES = 50_000_000


class _ExportTooBig(Exception):
    pass


class _CappedBuffer:
    """A text sink for write_export that keeps UTF-8 bytes and stops at the limit, so a database far too
    big to send is neither read to its end nor held in memory beyond the limit."""

    def __init__(self, limit: int):
        self.limit, self.data = limit, io.BytesIO()

    def write(self, text: str) -> int:
        self.data.write(text.encode("utf-8"))
        if self.data.tell() > self.limit:
            raise _ExportTooBig
        return len(text)


def _export_csv(storage: Storage, limit: int) -> bytes | None:
    """The CSV `compliance-bot export` writes, or None if it would pass ``limit`` bytes."""
    out = _CappedBuffer(limit)
    try:
        write_export(export_rows(storage), out, "csv")
    except _ExportTooBig:
        return None
    return out.data.getvalue()


def _export_csv_from_file(path: str, limit: int) -> bytes | None:
    """_export_csv over a read-only connection of its own, for a worker thread."""
    storage = Storage.open_read_only(path)
    try:
        return _export_csv(storage, limit)
    finally:
        storage.close()


@moderator_only
async def export(update: Update, context: BotContext) -> None:
    """Every flag as a CSV document, the same as `compliance-bot export` writes."""
    storage = context.services.storage
    path = storage.path
    if path:
        data = await asyncio.to_thread(_export_csv_from_file, path, MAX_EXPORT_BYTES)
    else:  # an in-memory database has no file for a second connection to open
        data = _export_csv(storage, MAX_EXPORT_BYTES)
    if data is None:
        log.info("/export passed %d bytes; pointed the moderator to the CLI", MAX_EXPORT_BYTES)
        await update.effective_message.reply_text(
            f"The export is larger than the {MAX_EXPORT_BYTES / 1e6:g} MB Telegram lets a bot send. On the bot's "
            "server, run: compliance-bot export -o flags.csv (compliance-bot export --help shows how to narrow it "
            "with --status, --label and --since)."
        )
        return
    name = f"flags-{datetime.now(timezone.utc):%Y%m%d-%H%M}.csv"
    await update.effective_message.reply_document(InputFile(io.BytesIO(data), filename=name))


@moderator_only
async def model(update: Update, context: BotContext) -> None:
    """The model's version, training date and metrics."""
    clf = context.services.classifier
    manifest = getattr(clf, "manifest", {}) or {}
    metrics = json.dumps(manifest.get("metrics", {}), ensure_ascii=False, indent=1)[:3000]
    await reply_html(
        update,
        f"Model <b>{escape(str(clf.version))}</b>\ncreated {escape(str(manifest.get('created_at', '?')))}, "
        f"scikit-learn {escape(str(manifest.get('sklearn_version', '?')))}\n<pre>{escape(metrics)}</pre>",
    )


@moderator_only
async def reload(update: Update, context: BotContext) -> None:
    """Load the model file again; on failure keep the running model."""
    svc = context.services
    if svc.loader is None:
        await update.effective_message.reply_text("Reloading is not available in this setup.")
        return
    old = svc.classifier.version
    try:
        svc.classifier = await asyncio.to_thread(svc.loader)
    except Exception as exc:  # ModelLoadError and anything else: the running model stays
        log.error("model reload failed, keeping %s: %s", old, exc)
        await update.effective_message.reply_text(f"Reload failed, still using {old}: {exc}")
        return
    await refresh_watchlist_in_thread(svc)  # the new classifier matches the current watchlist too
    log.info("model reloaded: %s -> %s", old, svc.classifier.version)
    await update.effective_message.reply_text(f"Model reloaded: {old} → {svc.classifier.version}")


# -- public channels through their web preview (bot/watched_channels.py) ----------------------------------------


@moderator_only
async def watch(update: Update, context: BotContext) -> None:
    """Watch public channels by their web preview, after checking each on t.me."""
    svc = context.services
    if not context.args:
        await update.effective_message.reply_text("Send /watch NAME…: @name, t.me/name or a post link.")
        return
    # Each name costs a request to t.me, spaced and retried (seconds, a minute when t.me is down): checked in
    # the background, so that the bot goes on handling updates meanwhile.
    names, by = context.args[:MAX_WATCH_NAMES], update.effective_user.full_name
    context.application.create_task(_add_and_reply(update, svc, names, len(context.args), by), update=update)


async def _add_and_reply(update: Update, svc, names: list[str], asked: int, by: str) -> None:
    try:
        async with svc.web_fetcher.session() as fetcher:
            changes = await add_channels(svc.storage, fetcher, names, added_by=by)
    except sqlite3.Error as exc:
        log.error("/watch failed: database error %s", exc)
        await update.effective_message.reply_text("The database is unavailable right now; try again shortly.")
        return
    await _reply_changes(update, changes, asked)


@moderator_only
async def unwatch(update: Update, context: BotContext) -> None:
    """Stop watching public channels; their flags stay."""
    if not context.args:
        await update.effective_message.reply_text("Send /unwatch NAME…")
        return
    changes = remove_channels(context.services.storage, context.args[:MAX_WATCH_NAMES])
    await _reply_changes(update, changes, len(context.args))


@moderator_only
async def watching(update: Update, context: BotContext) -> None:
    """The public channels watched by their web preview."""
    rows = watched(context.services.storage)
    lines = [
        f"{'👁' if c['status'] == 'active' else '⚠️'} @{escape(c['username'])} {code(excerpt(c['title'] or '', 40))}"
        f" · {escape(c['status'])} · {c['posts']} posts, {c['flags']} flags"
        + (f" · {escape(c['problem'])}" if c["problem"] else "")
        for c in rows[:MAX_CHATS]
    ]
    more = "… and {} more channels (compliance-bot watch list shows all)"
    await reply_listing(update, lines, len(rows), more, "No public channels are watched: /watch NAME adds one.")


# Names one /watch or /unwatch takes: each is checked on t.me, one request every WATCH_MIN_DELAY_SECONDS.
MAX_WATCH_NAMES = 20


async def _reply_changes(update: Update, changes, asked: int) -> None:
    lines = [("✅ " if c.ok else "⚠️ ") + escape(c.message) for c in changes]
    if asked > MAX_WATCH_NAMES:
        lines.append(f"Only the first {MAX_WATCH_NAMES} names were looked at; send the rest again.")
    for text in fit_messages(lines):
        await reply_html(update, text)


COMMANDS = {
    "start": start,
    "help": help_command,
    "check": check,
    "stats": stats,
    "recent": recent,
    "pending": pending,
    "chats": chats,
    "export": export,
    "model": model,
    "reload": reload,
    "watch": watch,
    "unwatch": unwatch,
    "watching": watching,
}
