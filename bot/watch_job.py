"""The running bot's polling of watched public channels (bot/watched_channels.py): one round, then the next
after WATCH_INTERVAL_SECONDS with jitter, as a chain of one-off jobs so that a long round never overlaps the next."""

from __future__ import annotations

import logging
import random

from telegram.ext import Application

from bot.services import BotContext
from bot.settings import Settings
from bot.watched_channels import poll_round
from bot.web_preview_fetch import PoliteFetcher

log = logging.getLogger(__name__)

# Rounds start this much earlier or later than the interval, at random: many bots (or restarts) do not
# fall into step against t.me.
JITTER = 0.1


def schedule_watch(app: Application, settings: Settings) -> PoliteFetcher:
    """Give the services the web preview fetcher and start the rounds (the first one soon after start-up)."""
    fetcher = PoliteFetcher(settings.telegram_web_url, settings.watch_min_delay_seconds)
    app.bot_data["services"].web_fetcher = fetcher
    app.job_queue.run_once(watch_job, when=1.0, data=settings.watch_interval_seconds, name="watch")
    return fetcher


async def watch_job(context: BotContext) -> None:
    """Read every watched channel once; new promotion alerts through the outbox like a live post."""
    svc = context.services
    interval = context.job.data
    try:
        async with svc.web_fetcher.session() as fetcher:
            summary = await poll_round(svc, fetcher)
        if summary.channels:
            log.info(
                "web preview round: %d channels, %d pages, %d new posts, %d edited, %d flags, %d problems in %.1f s",
                len(summary.channels),
                summary.total("pages"),
                summary.total("new"),
                summary.total("edited"),
                summary.total("flags"),
                summary.errors,
                summary.finished - summary.started,
            )
    except Exception:  # whatever went wrong, the next round comes
        log.exception("web preview round failed; the next one runs as planned")
    finally:
        delay = interval * random.uniform(1 - JITTER, 1 + JITTER)
        context.job_queue.run_once(watch_job, when=delay, data=interval, name="watch")
