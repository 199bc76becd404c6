"""The ``compliance-bot`` command line."""

from __future__ import annotations

import sys
from pathlib import Path

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


def _model(settings, model_path=None):
    """The classifier, trained from the bundled corpus on first use."""
    from classifier import ModelLoadError, load_or_train

    try:
        return load_or_train(model_path or settings.model_path, settings.training_data_dir,
                             log=lambda m: click.echo(m, err=True))
    except ModelLoadError as exc:
        raise click.ClickException(str(exc)) from None


_model_option = click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
                             help="Model file (default: MODEL_PATH, data/model.joblib).")


@cli.command()
@click.argument("text")
@_model_option
def check(text, model_path):
    """Classify one TEXT and explain the verdict."""
    from bot.batch import describe_verdict

    if not text.strip():
        raise click.UsageError("TEXT is empty: give the post to check, e.g. compliance-bot check \"Presale live now\"")
    model = _model(_settings(), model_path)
    click.echo(describe_verdict(model.predict(text)))


@cli.command()
@click.argument("source", type=click.File("r", encoding="utf-8", errors="surrogateescape"), default="-")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="Where to write JSONL (default: standard output).")
@click.option("--reasons", default=5, show_default=True, help="Reasons per post (0 for none, faster).")
@_model_option
def classify(source, output, reasons, model_path):
    """Classify posts from SOURCE (a file or - for standard input).

    SOURCE is JSONL (objects with "text"; other fields are kept) or plain text, one post a line. Writes
    JSONL with "label", "scores" (label → probability) and "reasons" added. Lines that cannot be used are
    reported on standard error with their number; the exit code is 1 when any was skipped.
    """
    from bot.batch import classify_stream

    model = _model(_settings(), model_path)
    name = getattr(source, "name", "-")
    summary = classify_stream(model, source, output, lambda m: click.echo(f"{name}: {m}", err=True), reasons=reasons)
    click.echo(f"{summary.classified} posts classified, {summary.flagged} flagged, {summary.skipped} skipped", err=True)
    if summary.skipped:
        sys.exit(1)


@cli.command()
@click.option("--extra", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="More labelled posts (JSONL with text and label); repeatable.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="Corpus directories or files instead of the bundled training_data/.")
@click.option("--force", is_flag=True, help="Replace the current model even if macro-F1 drops by more than 0.01.")
@_model_option
def train(extra, data, force, model_path):
    """Retrain the classifier, report cross-validated figures, and save it if it passes the quality gate."""
    from classifier.train import GateRefused, train_and_save

    settings = _settings()
    data = list(data) or ([settings.training_data_dir] if settings.training_data_dir else None)
    try:
        result = train_and_save(model_path or settings.model_path, data=data, extra=extra, force=force)
    except GateRefused as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if result.problems:
        click.echo(f"{len(result.problems)} lines were skipped (see above)", err=True)
        sys.exit(1)
