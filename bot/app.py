"""Building and running the PTB application: handlers, jobs, rate limiter, logging without the token."""

from __future__ import annotations

import logging
import sqlite3
import sys
from functools import partial

from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from bot import commands
from bot.action_commands import ACTION_COMMANDS
from bot.autodelete import autodelete_job
from bot.digest import queue_digest
from bot.image_text import ImageReader
from bot.membership import on_my_chat_member
from bot.model_watch import ModelWatcher
from bot.moderation_actions import ACTION_DATA, on_action
from bot.polling import GET_UPDATES_CONNECTIONS, confirm_after_store
from bot.review import on_review
from bot.scan_store import retry_unsaved
from bot.scanning import on_post
from bot.services import CONTEXT_TYPES, BotContext, Classifier, Services
from bot.settings import ConfigError, Settings
from bot.storage import Storage
from bot.watch_job import schedule_watch
from bot.watchlist import refresh as refresh_watchlist
from bot.watchlist import refresh_in_thread as refresh_watchlist_in_thread
from bot.webhook import use_webhook_intake

log = logging.getLogger(__name__)

# SQLite's busy timeout for the live bot. Writes run on the event loop, so a locked file must fail them fast;
# every write has a retry path (scans wait in memory, the outbox retries next round, a review is asked again).
DB_BUSY_TIMEOUT = 0.15

ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CHANNEL_POST,
    Update.EDITED_CHANNEL_POST,
    Update.CALLBACK_QUERY,
    Update.MY_CHAT_MEMBER,
]

# No ~filters.COMMAND: a post may start with any /word ("/join Presale …"); commands for this bot are taken
# by the CommandHandlers added before, so only the rest reaches the scan.
POSTS = filters.UpdateType.CHANNEL_POSTS | (filters.ChatType.GROUPS & filters.UpdateType.MESSAGES)
# A picture sent to the bot in private is checked like a forwarded post (its text read by OCR).
PICTURES = filters.PHOTO | filters.Document.IMAGE | filters.VIDEO | filters.ANIMATION


async def outbox_job(context: BotContext) -> None:
    """Store scans that waited for the database, then send what the outbox holds."""
    svc = context.services
    try:
        retry_unsaved(svc)
        await svc.outbox.flush(context.bot, svc.secret)
    except sqlite3.Error as exc:
        log.error("outbox round skipped: database error %s; nothing is lost, retrying next round", exc)


async def digest_job(context: BotContext) -> None:
    """Queue the periodic digest (the outbox job sends it)."""
    svc = context.services
    try:
        queue_digest(svc.storage, svc.moderator_chat_id)
        await svc.outbox.flush(context.bot, svc.secret)
    except sqlite3.Error as exc:
        log.error("digest skipped: database error %s; it will cover this period next time", exc)


async def model_watch_job(context: BotContext) -> None:
    """Use a retrained or rolled-back model as soon as its file is replaced, and the current watchlist."""
    svc = context.services
    if svc.model_watcher is not None:
        await svc.model_watcher.check(svc)
    try:
        await refresh_watchlist_in_thread(svc)
    except sqlite3.Error as exc:
        log.error("watchlist not read: database error %s; keeping the list in use", exc)


async def on_unhandled(update: Update, context: BotContext) -> None:
    """Log updates no handler took, so an unexpected kind is visible rather than silently dropped."""
    kind = next(
        (
            k
            for k in ALLOWED_UPDATES + ["chat_member", "inline_query", "poll", "message_reaction"]
            if getattr(update, k, None) is not None
        ),
        "unknown",
    )
    log.info("update %d (%s) ignored: nothing to do with it", update.update_id, kind)


async def on_error(update: object, context: BotContext) -> None:
    """Log a handler's failure with the update that caused it; the bot carries on."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error while handling update %s", update_id, exc_info=context.error)


def build_application(
    settings: Settings,
    classifier: Classifier,
    storage: Storage,
    *,
    loader=None,
    request: BaseRequest | None = None,
    token: str | None = None,
    scan_in_background: bool = False,
) -> Application:
    """The application with its handlers and jobs; `request` lets tests put an in-memory transport under it.

    With `scan_in_background` (the live bot) a post's handler does not hold up the next update, so the posts
    of one getUpdates batch are classified and stored together; other updates are still handled one by one.
    Tests that process one update at a time leave it off and find the scan stored when the update is handled.
    """
    builder = (
        ApplicationBuilder()
        .context_types(CONTEXT_TYPES)
        .token(token or settings.require_token())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        .rate_limiter(AIORateLimiter(group_max_rate=settings.alerts_per_minute))
        .post_init(partial(_post_init, settings))
        .post_shutdown(_post_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    else:
        # A spare connection for the last getUpdates of a stop, which confirms what was processed: without
        # it that call can wait behind the long poll's connection and time out (bot/polling.py).
        builder = builder.get_updates_connection_pool_size(GET_UPDATES_CONNECTIONS)
    app = builder.build()
    app.bot_data["services"] = Services.from_settings(
        settings, storage, classifier, loader=loader, images=ImageReader.from_settings(settings)
    )
    svc = app.bot_data["services"]
    refresh_watchlist(svc)  # the listed platforms, from the database
    confirm_after_store(app, lambda: len(svc.unsaved), lambda: svc.scans.in_flight)
    if settings.model_check_seconds > 0:
        from classifier import load_model

        app.bot_data["services"].model_watcher = ModelWatcher(
            settings.model_path, partial(load_model, settings.model_path)
        )
        app.job_queue.run_repeating(
            model_watch_job,
            interval=settings.model_check_seconds,
            first=settings.model_check_seconds,
            name="model-watch",
        )
    for name, callback in commands.COMMANDS.items():
        app.add_handler(CommandHandler(name, callback))
    for name, callback in ACTION_COMMANDS.items():
        app.add_handler(CommandHandler(name, callback))
    # Review presses are every press but the action buttons': PTB hands a press without data to any handler,
    # pattern or not, so the review handler comes first and turns those away as it always did.
    app.add_handler(CallbackQueryHandler(on_review, pattern=f"(?!{ACTION_DATA})"))
    app.add_handler(CallbackQueryHandler(on_action, pattern=ACTION_DATA))
    app.add_handler(ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.FORWARDED, commands.check_forwarded))
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & PICTURES, commands.check_forwarded))
    app.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & ~filters.COMMAND, commands.private_hint)
    )
    app.add_handler(MessageHandler(POSTS, on_post, block=not scan_in_background))
    # Last in the group: only updates that no handler above took reach it.
    app.add_handler(TypeHandler(Update, on_unhandled))
    app.add_error_handler(on_error)
    app.job_queue.run_repeating(outbox_job, interval=settings.outbox_interval_seconds, first=0.5, name="outbox")
    app.job_queue.run_repeating(autodelete_job, interval=settings.outbox_interval_seconds, first=1.0, name="autodelete")
    digest_seconds = settings.digest_interval_minutes * 60
    app.job_queue.run_repeating(digest_job, interval=digest_seconds, first=digest_seconds, name="digest")
    # Public channels read through their web preview (bot/watched_channels.py), every WATCH_INTERVAL_SECONDS.
    schedule_watch(app, settings)
    return app


async def _post_init(settings: Settings, app: Application) -> None:
    try:
        await commands.register_commands(app.bot, settings.moderator_chat_id)
    except Exception as exc:  # a missing command menu is no reason not to scan
        log.warning("setMyCommands failed: %s", exc)
    log.info("bot @%s ready; alerts to chat %s", app.bot.username, settings.moderator_chat_id)


async def _post_shutdown(app: Application) -> None:
    svc = app.bot_data["services"]
    svc.storage.close()
    if svc.images is not None:
        svc.images.close()


class RedactingFormatter(logging.Formatter):
    """Replaces the token wherever it appears, tracebacks included: request URLs contain it."""

    def __init__(self, token: str, fmt: str):
        super().__init__(fmt)
        self.token = token

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(self.token, "<token>")


def _short_start_up_failure(record: logging.LogRecord) -> bool:
    """PTB logs a failed start-up (bad token, no network) with a long traceback; run_bot reports it in one line."""
    if record.name.startswith("telegram") and record.exc_info and "Aborting" in record.getMessage():
        record.exc_info, record.exc_text = None, None
    return True


def configure_logging(token: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(token, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_short_start_up_failure)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # httpx logs every request URL at INFO, and the URL holds the token; the formatter would redact it,
    # but one line per long poll is noise anyway.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # The rate limiter logs a 429 with a full traceback; the outbox logs it in one line and retries.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)


def run_bot(settings: Settings, webhook: bool = False) -> None:
    """Load the model, open the database and serve updates until interrupted."""
    token = settings.require_token()
    # Optional for the offline commands, but the live bot has nowhere to alert and no one to review without them.
    if settings.moderator_chat_id is None:
        raise ConfigError(
            "MODERATOR_CHAT_ID is not set: required for run "
            "(the moderators' channel or group for alerts and digests, e.g. -1001234567890)"
        )
    if not settings.moderator_user_ids:
        raise ConfigError(
            "MODERATOR_USER_IDS is not set: required for run (comma-separated Telegram user ids of the moderators)"
        )
    configure_logging(token)
    if webhook and not settings.webhook_url:
        raise ConfigError("WEBHOOK_URL: required with --webhook")
    if webhook and settings.webhook_secret is None:
        raise ConfigError(
            "WEBHOOK_SECRET is not set: required with --webhook (1-256 letters, digits, _ and -), "
            "so that only Telegram can post updates to the webhook"
        )
    try:
        storage = Storage.open(settings.database_path, timeout=DB_BUSY_TIMEOUT)
    except sqlite3.Error as exc:
        raise ConfigError(f"DATABASE_PATH: cannot open {settings.database_path}: {exc}") from None
    from classifier import ModelLoadError, load_or_train

    loader = partial(load_or_train, settings.model_path, settings.training_data_dir, log=log.info)
    try:
        classifier = loader()
    except ModelLoadError as exc:
        raise ConfigError(f"MODEL_PATH: {exc}") from None
    log.info("model %s loaded from %s", classifier.version, settings.model_path)
    app = build_application(settings, classifier, storage, loader=loader, token=token, scan_in_background=True)
    try:
        if webhook:
            use_webhook_intake(app)  # bodies are validated before they become updates (bot/webhook.py)
            app.run_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                webhook_url=settings.webhook_url,
                allowed_updates=ALLOWED_UPDATES,
                secret_token=settings.webhook_secret.get_secret_value(),
            )
        else:
            app.run_polling(allowed_updates=ALLOWED_UPDATES)
    except (TelegramError, OSError) as exc:
        # Start-up failed (initialize, deleteWebhook, setWebhook, binding the webhook port): one line, no token.
        raise ConfigError(start_up_error(exc, settings, token)) from None


def start_up_error(exc: Exception, settings: Settings, token: str) -> str:
    """One line naming the setting to look at; PTB's InvalidToken message quotes the token, so it is redacted."""
    detail = " ".join(str(exc).replace(token, "<token>").split())
    if isinstance(exc, InvalidToken):
        return f"TELEGRAM_BOT_TOKEN: Telegram rejected the token ({detail}); check it with @BotFather"
    if isinstance(exc, NetworkError):
        return f"TELEGRAM_API_URL: cannot reach the Bot API at {settings.telegram_api_url} ({type(exc).__name__}: {detail})"
    if isinstance(exc, TelegramError):
        return f"Telegram refused to start the bot: {type(exc).__name__}: {detail}"
    return (
        f"WEBHOOK_LISTEN / WEBHOOK_PORT: cannot listen on {settings.webhook_listen}:{settings.webhook_port} ({detail})"
    )
