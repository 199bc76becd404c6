"""The ``compliance-bot`` command line."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import click

from bot.settings import MAX_STATS_DAYS, ConfigError, Settings, load_settings

_NOT_MADE = object()  # CliApp's OCR reader before first use (None is a reader switched off: OCR_ENABLED=false)


class CliApp:
    """What the commands of one invocation share, kept in click's context object: the settings, read once
    on first use (so that ``--help`` works even with a malformed ``.env``), and the classifier, loaded (or
    trained from the bundled corpus) once on first use, and the OCR reader likewise. Tests hand in their own:
    ``CliRunner().invoke(cli, args, obj=CliApp(classifier=FakeClassifier()))``."""

    def __init__(self, settings: Settings | None = None, classifier=None, image_reader=None):
        self._settings = settings
        self._classifier = classifier
        self._image_reader = image_reader if image_reader is not None else _NOT_MADE

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except ConfigError as exc:
                raise click.ClickException(f"configuration error: {exc}") from None
        return self._settings

    def classifier(self, model_path: Path | None = None):
        """The classifier at ``model_path`` (default MODEL_PATH), trained from the bundled corpus on first use."""
        if self._classifier is None:
            from classifier import ModelLoadError, load_or_train

            try:
                self._classifier = load_or_train(
                    model_path or self.settings.model_path,
                    self.settings.training_data_dir,
                    log=lambda m: click.echo(m, err=True),
                )
            except ModelLoadError as exc:
                raise click.ClickException(str(exc)) from None
        return self._classifier

    def image_reader(self):
        """The OCR reader the settings ask for (OCR_*), made once on first use; None when OCR_ENABLED is off."""
        if self._image_reader is _NOT_MADE:
            from bot.image_text import ImageReader

            self._image_reader = ImageReader.from_settings(self.settings)
        return self._image_reader


pass_app = click.make_pass_decorator(CliApp, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="telegram-compliance-bot")
@click.pass_context
def cli(ctx):
    """Find ICO and crypto trading-service promotion in Telegram posts."""
    ctx.ensure_object(CliApp)


@cli.command()
@click.option(
    "--webhook", is_flag=True, help="Receive updates through a webhook (WEBHOOK_URL) instead of long polling."
)
@pass_app
def run(app, webhook):
    """Run the bot: scan watched chats, store flags, alert moderators."""
    from bot.app import run_bot

    try:
        run_bot(app.settings, webhook=webhook)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


_model_option = click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file (default: MODEL_PATH, data/model.joblib).",
)


@cli.command()
@click.argument("text", required=False)
@click.option(
    "--image",
    "image_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A picture of the post (a photo, a screenshot): its text is read (OCR) and checked with TEXT.",
)
@_model_option
@pass_app
def check(app, text, image_path, model_path):
    """Classify one TEXT, or the text of a picture (--image FILE [TEXT]), and explain the verdict."""
    from bot.post import scan_text
    from bot.verdict_text import verdict_text

    if image_path is None and not (text or "").strip():
        raise click.UsageError(
            'TEXT is empty: give the post to check, e.g. compliance-bot check "Presale live now", or --image FILE'
        )
    images = _read_image_option(app, image_path, text) if image_path is not None else []
    scanned = scan_text(text, images=images)
    if scanned is None:
        raise click.ClickException(f"nothing to check: no text was read from {image_path} and no TEXT was given")
    model = app.classifier(model_path)
    click.echo(verdict_text(model.predict(scanned), text=scanned))


def _read_image_option(app, image_path: Path, text: str | None) -> list[list[str]]:
    """The text lines of check's --image, as scan_text takes them; a picture that cannot be read is an error
    without TEXT, and a warning with it (the text is checked alone)."""
    from bot.image_text import ImageRefused

    reader = app.image_reader()
    try:
        if reader is None:
            raise ImageRefused("OCR_ENABLED is off")
        try:
            data = image_path.read_bytes()
        except OSError as exc:
            raise ImageRefused(f"cannot open it ({exc.strerror or exc})") from None
        return [reader.read_now(data).texts]
    except ImageRefused as exc:
        if not (text or "").strip():
            raise click.ClickException(f"{image_path}: not read: {exc}") from None
        click.echo(f"{image_path}: not read: {exc}; checking TEXT alone", err=True)
        return []


@cli.command()
@click.argument("source", type=click.File("r", encoding="utf-8", errors="surrogateescape"), default="-")
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Where to write JSONL (default: standard output).",
)
@click.option("--reasons", default=5, show_default=True, help="Reasons per post (0 for none, faster).")
@_model_option
@pass_app
def classify(app, source, output, reasons, model_path):
    """Classify posts from SOURCE (a file or - for standard input).

    SOURCE is JSONL (objects with "text"; other fields are kept) or plain text, one post a line. Writes
    JSONL with "label", "scores" (label → probability) and "reasons" added. Lines that cannot be used are
    reported on standard error with their number; the exit code is 1 when any was skipped.
    """
    from bot.classify_stream import classify_stream

    model = app.classifier(model_path)
    name = getattr(source, "name", "-")
    summary = classify_stream(model, source, output, lambda m: click.echo(f"{name}: {m}", err=True), reasons=reasons)
    click.echo(f"{summary.classified} posts classified, {summary.flagged} flagged, {summary.skipped} skipped", err=True)
    if summary.skipped:
        sys.exit(1)


def _open_db(settings, db_path, *, must_exist: bool = True):
    """The bot's database; a missing file is a clear error rather than a new empty database."""
    import sqlite3

    from bot.storage import Storage

    path = db_path or settings.database_path
    try:
        return Storage.open_existing(path) if must_exist else Storage.open(path)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot open the database {path}: {exc}") from None


_db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bot's SQLite database (default: DATABASE_PATH, data/compliance.db).",
)


@cli.command()
@click.option(
    "--extra",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="More labelled posts (JSONL with text and label); repeatable.",
)
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    help="Corpus directories or files instead of the bundled training_data/.",
)
@click.option("--force", is_flag=True, help="Install the new model even if the quality gate refuses it.")
@click.option("--no-reviews", is_flag=True, help="Leave the moderators' reviews out (train on the corpus alone).")
@click.option(
    "--leave-out",
    type=click.Choice(["register", "genre"]),
    multiple=True,
    help="Also measure how the model does on a register (or genre) it never saw: a model per "
    "register (or genre), trained without it; the figures go into the training report. Repeatable.",
)
@_db_option
@_model_option
@pass_app
def train(app, extra, data, force, no_reviews, leave_out, db_path, model_path):
    """Retrain the classifier from the corpus and the moderators' reviews, and install it if it passes
    the quality gate.

    Reviewed flags in the database are added to the corpus: a confirmed flag keeps its label, a false
    positive becomes benign, a relabelled flag takes its new label; the latest review of a text wins over
    the corpus. The new model and the current one are compared on the same held-out split; a new model
    whose macro-F1 is lower by more than 0.01 is not installed (--force overrides). Every installed model
    is kept (see `compliance-bot model list`); a running bot picks up the new one by itself.
    """
    from classifier import GateRefused, train_and_save

    settings = app.settings
    data = list(data) or ([settings.training_data_dir] if settings.training_data_dir else None)
    reviewed, review_problems = [], []
    if not no_reviews:
        path = db_path or settings.database_path
        if db_path is None and not Path(path).exists():
            click.echo(f"No database at {path}: training on the corpus alone.", err=True)
        else:
            from bot.retrain import reviewed_posts

            storage = _open_db(settings, db_path)
            try:
                reviewed, review_problems = reviewed_posts(storage)
            finally:
                storage.close()
            for problem in review_problems:
                click.echo(f"skipped {problem}", err=True)
            click.echo(f"{len(reviewed)} reviewed posts from {path}", err=True)
    try:
        result = train_and_save(
            model_path or settings.model_path,
            data=data,
            extra=extra,
            reviewed=reviewed,
            force=force,
            leave_out=leave_out,
            log=lambda m: click.echo(m, err=True),
        )
    except GateRefused as exc:
        raise click.ClickException(f"not installed: {exc}") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Installed model {result.model.version}: {result.reviews_used} reviews used, "
        f"{result.conflicts} conflicts with the corpus"
    )
    skipped = len(result.problems) + len(review_problems)
    if skipped:
        click.echo(f"{skipped} lines or reviews were skipped (see above)", err=True)
        sys.exit(1)


@cli.group()
def model():
    """List the kept model versions, or roll back to one."""


@model.command("list")
@_model_option
@pass_app
def model_list(app, model_path):
    """The kept model versions, oldest first; * marks the installed one."""
    from classifier import list_versions

    path = model_path or app.settings.model_path
    versions = list_versions(path)
    if not versions:
        click.echo(f"No kept model versions beside {path} (train one with `compliance-bot train`).")
        return
    click.echo(f"{'':2}{'version':<30} {'created':<26} {'posts':>6} {'reviews':>7} {'macro-F1':>8}  gate")
    for v in versions:
        gate = v.get("gate") or {}
        f1 = (v.get("metrics") or {}).get("macro_f1")
        held = gate.get("candidate_macro_f1")
        gate_text = (
            f"held-out {held:.3f} vs {gate.get('current_macro_f1'):.3f}"
            if held is not None and gate.get("current_macro_f1") is not None
            else gate.get("method", "")
        )
        click.echo(
            f"{'* ' if v['installed'] else '  '}{v['model_version']:<30} {v.get('created_at', '?'):<26} "
            f"{v.get('training_posts', '?'):>6} {(v.get('reviews') or {}).get('used', 0):>7} "
            f"{f1 if f1 is None else format(f1, '.3f'):>8}  {gate_text}{' (forced)' if gate.get('forced') else ''}"
        )


@model.command("rollback")
@click.argument("version", required=False)
@_model_option
@pass_app
def model_rollback(app, version, model_path):
    """Install a kept VERSION again (default: the one before the installed one).

    A running bot picks it up within seconds, or at once on /reload.
    """
    from classifier import VersionError, install, installed_version, previous_version

    path = model_path or app.settings.model_path
    try:
        old = installed_version(path)
        version = version or previous_version(path)
        install(path, version)
    except VersionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Installed model {version} (was {old}) at {path}")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a container or taskset may allow fewer than the machine has
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# The main process (reading and storing) is the bottleneck from two workers on (benchmarks/README.md):
# more would only hold more memory, about 160 MB each.
DEFAULT_MAX_WORKERS = 2
MAX_WORKERS = 64


def _default_workers() -> int:
    return min(_usable_cores(), DEFAULT_MAX_WORKERS)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--alert",
    is_flag=True,
    help="Send the flags found to the moderators as one digest (needs TELEGRAM_BOT_TOKEN and MODERATOR_CHAT_ID).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_WORKERS),
    default=None,
    help="Processes that classify while this one reads and stores (default: the usable cores, at "
    f"most {DEFAULT_MAX_WORKERS}: {_default_workers()} here); 1 classifies in this process.",
)
@_db_option
@_model_option
@pass_app
def scan(app, files, alert, workers, db_path, model_path):
    """Scan Telegram Desktop exports (result.json of a chat or of a whole account) and JSONL files of posts.

    Posts and flags are stored in the bot's database, under the same Bot API chat ids as live posts, so a
    post seen both ways is one row. Flags from history do not alert one by one: they wait in the review
    queue (/pending) and the next digest, or go out at once as a digest with --alert. JSONL lines need
    "text", "chat_id" and "message_id". The pictures of an export made with media (photos, images sent as
    files, the first frame of videos) are read (OCR, unless OCR_ENABLED is off) and scanned with their post; a
    picture missing from the export is counted. A message or file that cannot be read is reported and skipped;
    the exit code is 1 when anything was skipped. Ctrl-C stops the scan and keeps what was stored (exit
    code 130); scanning the same files again continues where it stopped.
    """
    from bot.history_scan import scan_files
    from bot.scan_summary import summary_table

    settings = app.settings
    if alert:
        try:
            settings.require_token()
        except ConfigError as exc:
            raise click.ClickException(f"--alert: {exc}") from None
        if settings.moderator_chat_id is None:
            raise click.ClickException("--alert: MODERATOR_CHAT_ID is not set: the digest has nowhere to go")
    classifier = app.classifier(model_path)
    storage = _open_db(settings, db_path, must_exist=False)

    def progress(path, size):
        if size < PROGRESS_MIN_BYTES:
            return None
        return click.progressbar(
            length=max(size, 1), label=f"Scanning {path.name}", file=sys.stderr, show_eta=True, width=30
        )

    try:
        summary = scan_files(
            files,
            storage,
            classifier,
            report=lambda m: click.echo(m, err=True),
            store_benign_text=settings.store_benign_text,
            progress=progress,
            workers=workers or _default_workers(),
            images=app.image_reader(),
        )
        click.echo(summary_table(summary))
        if alert and not summary.interrupted:  # Ctrl-C means stop: no digest of a partial scan
            _send_scan_digest(settings, storage, summary)
    finally:
        storage.close()
    if summary.problems:
        click.echo(f"{summary.problems} problems: see the messages above", err=True)
        sys.exit(130 if summary.interrupted else 1)


PROGRESS_MIN_BYTES = 2 << 20  # files this long (about 5,000 messages) get a progress bar


def _send_scan_digest(settings, storage, summary) -> None:
    import asyncio

    from telegram import Bot

    from bot.digest import build_digest
    from bot.outbox import Outbox

    built = build_digest(storage, summary.started, summary.finished, title="Scan digest")
    if built is None:
        click.echo("No new flags: no digest sent.")
        return
    text, count = built
    outbox_id = storage.queue_message("digest", settings.moderator_chat_id, text)

    async def send() -> bool:
        async with Bot(settings.require_token(), base_url=settings.telegram_api_url) as bot:
            return await Outbox(storage, settings.moderator_chat_id).send_now(bot, outbox_id, storage.secret())

    try:
        sent = asyncio.run(send())
    except Exception as exc:  # the network, a bad token: the digest stays queued for the bot
        sent = False
        # PTB's InvalidToken quotes the token: never print it.
        detail = str(exc).replace(settings.require_token(), "<token>")
        click.echo(f"Sending the digest failed ({type(exc).__name__}: {detail})", err=True)
    if sent:
        click.echo(f"Digest of {count} flags sent to the moderators.")
    else:
        click.echo(
            f"The digest of {count} flags is queued (outbox {outbox_id}); the running bot will send it.", err=True
        )


# bot.storage.FLAG_STATUSES, spelt out: importing bot.storage (sqlite-utils) would slow every command's
# start-up by about 0.15 s. tests/test_export.py holds the two equal.
EXPORT_STATUSES = ("pending", "confirmed", "false_positive", "relabelled", "withdrawn")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(EXPORT_STATUSES),
    help="Only flags with this status; repeatable.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    type=click.Choice(["ico", "trading_service"]),
    help="Only flags with this label; repeatable.",
)
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]),
    help="Only posts dated on or after this UTC date (YYYY-MM-DD[THH:MM[:SS]]).",
)
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Where to write (default: standard output).",
)
@_db_option
@pass_app
def export(app, fmt, statuses, labels, since, output, db_path):
    """Write the flags as CSV or JSONL: chat_id, chat_title, message_id, link, date, label, score, status,
    reviewed_by, reviewed_at, reasons, text."""
    from datetime import timezone

    from bot.flag_export import export_rows, write_export

    storage = _open_db(app.settings, db_path)
    try:
        since_ts = since.replace(tzinfo=timezone.utc).timestamp() if since else None
        n = write_export(export_rows(storage, statuses=statuses, labels=labels, since=since_ts), output, fmt)
    finally:
        storage.close()
    click.echo(f"{n} flags exported", err=True)


class _Days(click.FloatRange):
    """A number of days in (0, MAX_STATS_DAYS]. FloatRange alone lets nan through: every comparison with nan
    is false, so nan is neither below the minimum nor above the maximum."""

    def convert(self, value, param, ctx):
        days = super().convert(value, param, ctx)
        if math.isnan(days):
            self.fail(f"{value} is not a number of days in the range 0<x<={MAX_STATS_DAYS}.", param, ctx)
        return days


@cli.command()
@click.option(
    "--days",
    type=_Days(min=0, min_open=True, max=MAX_STATS_DAYS),
    default=7,
    show_default=True,
    help=f"The period to report, ending now: more than 0, at most {MAX_STATS_DAYS} days.",
)
@_db_option
@pass_app
def stats(app, days, db_path):
    """The digest's figures for the last N days: posts scanned, flags per label, chat and status, reviews,
    the review queue, the top flagged posts."""
    from bot.digest import stats_text

    storage = _open_db(app.settings, db_path)
    try:
        click.echo(stats_text(storage, days))
    finally:
        storage.close()
