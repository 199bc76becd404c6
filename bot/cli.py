"""The ``compliance-bot`` command line."""

from __future__ import annotations

import click

from bot.settings import ConfigError, load_settings


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="telegram-compliance-bot")
def cli():
    """Find ICO and crypto trading-service promotion in Telegram posts."""


@cli.command()
@click.option("--webhook", is_flag=True, help="Receive updates through a webhook (WEBHOOK_URL) instead of long polling.")
def run(webhook):
    """Run the bot: scan watched chats, store flags, alert moderators."""
    from bot.app import run_bot

    settings = _settings()
    try:
        run_bot(settings, webhook=webhook)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
