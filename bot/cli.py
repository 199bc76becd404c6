"""The ``compliance-bot`` command line."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import click

from bot.flag_lifecycle import FLAG_STATUSES
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
            self._classifier.watchlist = self.stored_watchlist()
        return self._classifier

    def stored_watchlist(self):
        """The listed platforms of the bot's database (DATABASE_PATH), compiled; None (the bundled list)
        when there is no database yet."""
        import sqlite3

        from bot.storage import Storage
        from bot.watchlist import load_watchlist

        path = self.settings.database_path
        if not Path(path).is_file():
            return None
        try:
            storage = Storage.open(path)
        except sqlite3.Error as exc:
            raise click.ClickException(f"cannot open the database {path}: {exc}") from None
        try:
            return load_watchlist(storage)
        finally:
            storage.close()

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
_output_option = click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Where to write (default: standard output).",
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
    type=click.Choice(["register", "genre", "source"]),
    multiple=True,
    help="Also measure how the model does on a genre it never saw (`genre`: a model per genre, trained "
    "without it) or on a writer's voice it never saw (`source`: a model per corpus file, about 10 min on 85 files); "
    "the figures go into the training report. Registers are always left out one by one (their "
    "predictions tune the thresholds); `register` is accepted and changes nothing. Repeatable.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="How many fits run at once, each in its own process (default 2, 1 on a one-core machine). Each "
    "takes about 0.9 GB on the bundled corpus; 1 fits one after another in this process (about 1.4 times "
    "as long).",
)
@_db_option
@_model_option
@pass_app
def train(app, extra, data, force, no_reviews, leave_out, jobs, db_path, model_path):
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
            **({"processes": jobs} if jobs else {}),
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
    from bot.watchlist import load_watchlist

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
    classifier.watchlist = load_watchlist(storage)  # the listed platforms of the database scanned into

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


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(FLAG_STATUSES),
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
@_output_option
@_db_option
@pass_app
def export(app, fmt, statuses, labels, since, output, db_path):
    """Write the flags as CSV or JSONL: chat_id, chat_title, message_id, link, date, label, score, status,
    reviewed_by, reviewed_at, reasons, text, sender (who made the post), actions (deletes and bans, with their
    outcome)."""
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


# -- bulk-scan (issue 13): archives on a Dask cluster ---------------------------------------------------
@cli.command("bulk-scan")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory for the Parquet dataset and summary.json (new, or one an earlier bulk-scan wrote).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="A dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster on this machine).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_WORKERS),
    default=None,
    help=f"Worker processes of the local cluster (default: the usable cores, {_usable_cores()} here).",
)
@click.option("--all", "write_all", is_flag=True, help="Write every post's verdict, not only the flags.")
@click.option(
    "--into-db",
    is_flag=True,
    help="Also merge the flags into the bot's database for review (DATABASE_PATH or --db); merging twice "
    "stores each flag once.",
)
@_db_option
@_model_option
@pass_app
def bulk_scan_command(app, inputs, out, scheduler, workers, write_all, into_db, db_path, model_path):
    """Scan archives of posts on a Dask cluster and write the verdicts as a Parquet dataset.

    INPUTS are Telegram Desktop exports (.json), JSONL files (.jsonl, .ndjson) and Parquet files (.parquet)
    of posts, directories of them (read recursively) and globs ("archive/**/*.parquet"). JSONL lines and
    Parquet rows need "text", "chat_id" (a Bot API id) or "channel" (a name), and "message_id" or "id";
    "date", "chat_title", "chat_username" and "chat_type" are read when present.

    Writes OUT/flags/ (one row a flag: chat, message, date, label, scores, reasons, model version, text;
    OUT/verdicts/ with every post under --all) and OUT/summary.json (posts, flags per label and per chat,
    skipped inputs with the reason, the model version, the time). Every worker loads the model once; inputs,
    OUT and the model must be reachable under the same paths on every worker. The exit code is 1 when an
    input, or a line of one, was skipped.
    """
    if scheduler and workers:
        raise click.UsageError("--workers sizes the local cluster: with --scheduler, the cluster has its own workers")
    from bot.bulk_scan import BulkScanError, bulk_scan, dashboard_link, dask_client

    settings = app.settings
    model = app.classifier(model_path)  # trained on first use here, then loaded by every worker
    storage = _open_db(settings, db_path, must_exist=False) if into_db else None
    try:
        with dask_client(scheduler, workers or _usable_cores()) as client:
            if link := dashboard_link(client):
                click.echo(f"Dask dashboard: {link}", err=True)

            def progress(partitions):
                return click.progressbar(
                    length=max(partitions, 1), label=f"Scanning {partitions} partitions", file=sys.stderr, width=30
                )

            summary = bulk_scan(
                client,
                inputs,
                out,
                model_path=model_path or settings.model_path,
                write_all=write_all,
                progress=progress,
            )
    except BulkScanError as exc:
        if storage is not None:
            storage.close()
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        if storage is not None:
            storage.close()
        click.echo(
            f"\ninterrupted: the part files written so far are in {out}, without a summary.json; run the same "
            "command again to scan everything (it replaces that output)",
            err=True,
        )
        sys.exit(130)
    for skipped in summary["skipped_inputs"]:
        click.echo(f"skipped {skipped['input']}: {skipped['reason']}", err=True)
    for problem in summary["problems"]:
        click.echo(problem, err=True)
    labels = ", ".join(f"{label} {n}" for label, n in summary["flags_per_label"].items())
    click.echo(
        f"{summary['posts']} posts in {summary['partitions']} partitions, {summary['flags']} flags"
        + (f" ({labels})" if labels else "")
        + f", model {summary['model_version'] or model.version}; {summary['seconds']} s, "
        f"{summary['posts_per_second']:.0f} posts/s"
    )
    click.echo(f"Wrote {Path(out) / summary['dataset']} and {Path(out) / 'summary.json'}")
    if storage is not None:
        from bot.bulk_merge import merge_flags

        try:
            merged = merge_flags(Path(out) / summary["dataset"], storage)
        finally:
            storage.close()
        click.echo(
            f"Database {db_path or settings.database_path}: {merged.stored} flags stored, {merged.already} already "
            f"there" + (f", {merged.no_chat_id} without a Bot API chat id not stored" if merged.no_chat_id else "")
        )
    problems = len(summary["skipped_inputs"]) + summary["skipped_lines"]
    if problems:
        click.echo(f"{problems} problems: see the messages above and summary.json", err=True)
        sys.exit(1)


# -- watchlist: the listed platforms (bot/watchlist.py, classifier/watchlist.py) --------------------------


@cli.group()
def watchlist():
    """The listed platforms (a regulator's list, a blocklist): posts that name or link one record it, and a
    link to a look-alike or mirror of one is flagged as trading_service."""


@watchlist.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_db_option
@pass_app
def watchlist_import(app, file, db_path):
    """Add the platforms of FILE to the list, or update those listed under the same name.

    FILE is CSV with a header or JSONL, one platform a row: name (required), domains and aliases
    (space-separated; lists in JSONL), note. Importing the same file twice changes nothing. A row that
    cannot be read is reported with its line number and the rest is imported; the exit code is then 1.
    """
    import sqlite3

    from bot.watchlist import import_platforms
    from classifier import read_platforms

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    found, problems = read_platforms(text)
    for problem in problems:
        click.echo(f"{file}: {problem}", err=True)
    storage = _open_db(app.settings, db_path, must_exist=False)
    try:
        result = import_platforms(storage, [p for _, p in found], source=file.name)
        total = next(storage.db.query("SELECT COUNT(*) AS n FROM watchlist"))["n"]
    except sqlite3.Error as exc:  # locked, read-only: the import is one transaction, nothing half-done
        raise click.ClickException(f"database error, nothing imported: {exc}") from None
    finally:
        storage.close()
    click.echo(
        f"{result.added} added, {result.changed} changed, {result.unchanged} unchanged, {len(problems)} skipped; "
        f"{total} platforms listed"
    )
    if problems:
        sys.exit(1)


@watchlist.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "jsonl"]),
    default="text",
    show_default=True,
    help="csv and jsonl can be imported again.",
)
@_output_option
@_db_option
@pass_app
def watchlist_list(app, fmt, output, db_path):
    """The listed platforms with their domains, aliases and note, by name."""
    from bot.watchlist import stored_platforms, write_platforms

    storage = _open_db(app.settings, db_path)
    try:
        platforms = stored_platforms(storage)
    finally:
        storage.close()
    write_platforms(platforms, output, fmt)
    if fmt == "text":
        click.echo(f"{len(platforms)} platforms listed", err=True)


@watchlist.command("remove")
@click.argument("name")
@_db_option
@pass_app
def watchlist_remove(app, name, db_path):
    """Take the platform NAME (any case) off the list. Posts and flags already stored keep what they recorded."""
    import sqlite3

    from bot.watchlist import remove_platform

    storage = _open_db(app.settings, db_path)
    try:
        removed = remove_platform(storage, name)
    except sqlite3.Error as exc:
        raise click.ClickException(f"database error, nothing removed: {exc}") from None
    finally:
        storage.close()
    if removed is None:
        raise click.ClickException(f"{name!r} is not listed (see compliance-bot watchlist list)")
    click.echo(f"Removed {removed}.")


# -- public channels through their web preview (bot/watched_channels.py) --------------------------------------


@cli.group()
def watch():
    """Watch public channels the bot cannot join, through their web preview (t.me/s/NAME).

    NAME is @name, name, t.me/name, https://t.me/s/name or a post link. The running bot reads every watched
    channel each WATCH_INTERVAL_SECONDS; `watch poll` does one round now.
    """


def _fetcher(settings):
    from bot.web_preview_fetch import PoliteFetcher

    return PoliteFetcher(settings.telegram_web_url, settings.watch_min_delay_seconds)


def _echo_changes(changes) -> None:
    for change in changes:
        click.echo(change.message, err=not change.ok)
    if not all(change.ok for change in changes):
        sys.exit(1)


@watch.command("add")
@click.argument("names", nargs=-1, required=True)
@_db_option
@pass_app
def watch_add(app, names, db_path):
    """Watch the public channels NAMES, after checking on t.me (TELEGRAM_WEB_URL) that each exists and shows a
    public post list. A name that cannot be watched is reported in one line and the exit code is 1."""
    import asyncio

    from bot.watched_channels import add_channels

    settings = app.settings
    storage = _open_db(settings, db_path, must_exist=False)

    async def add():
        async with _fetcher(settings).session() as fetcher:
            return await add_channels(storage, fetcher, list(names), added_by="command line")

    try:
        changes = asyncio.run(add())
    finally:
        storage.close()
    _echo_changes(changes)


@watch.command("remove")
@click.argument("names", nargs=-1, required=True)
@_db_option
@pass_app
def watch_remove(app, names, db_path):
    """Stop watching the channels NAMES; their posts and flags stay in the database."""
    from bot.watched_channels import remove_channels

    storage = _open_db(app.settings, db_path)
    try:
        changes = remove_channels(storage, list(names))
    finally:
        storage.close()
    _echo_changes(changes)


@watch.command("list")
@_db_option
@pass_app
def watch_list(app, db_path):
    """The watched channels: status, last post seen, last read, posts and flags stored."""
    from bot.alerts import fmt_time
    from bot.watched_channels import watched

    storage = _open_db(app.settings, db_path)
    try:
        rows = watched(storage)
    finally:
        storage.close()
    if not rows:
        click.echo("No channels are watched: add one with `compliance-bot watch add NAME`.")
        return
    for row in rows:
        click.echo(
            f"@{row['username']:<33} {row['status']:<8} last post {row['last_post_id'] or '-':<8} "
            f"read {fmt_time(row['polled_at']) if row['polled_at'] else 'never':<17} "
            f"{row['posts']:>6} posts {row['flags']:>5} flags  {row['title'] or ''}"
            + (f"  ({row['problem']})" if row["problem"] else "")
        )


@watch.command("poll")
@click.option(
    "--backfill",
    type=click.IntRange(min=0, max=1000),
    default=0,
    show_default=True,
    help="Also read this many older pages (about 20 posts each) of every channel.",
)
@_db_option
@_model_option
@pass_app
def watch_poll(app, backfill, db_path, model_path):
    """One polling round now over every watched channel: fetch, read, scan, store, alert, then a summary table.

    New promotion is alerted through the outbox like a live post: sent now when TELEGRAM_BOT_TOKEN and
    MODERATOR_CHAT_ID are set, otherwise left for the running bot. The exit code is 1 when a channel could
    not be read.
    """
    import asyncio

    from bot.services import Services
    from bot.watched_channels import poll_round, round_table

    settings = app.settings
    classifier = app.classifier(model_path)
    storage = _open_db(settings, db_path)
    svc = Services.from_settings(settings, storage, classifier)
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else None

    async def poll():
        async with _fetcher(settings).session() as fetcher:
            summary = await poll_round(svc, fetcher, backfill=backfill)
        if token and settings.moderator_chat_id is not None:
            from telegram import Bot

            try:
                async with Bot(token, base_url=settings.telegram_api_url) as bot:
                    await svc.outbox.flush(bot, svc.secret)
            except Exception as exc:  # the network, a bad token: the alerts stay queued for the bot
                detail = str(exc).replace(token, "<token>")  # PTB's InvalidToken quotes the token
                click.echo(f"Sending alerts failed ({type(exc).__name__}: {detail}); they wait in the outbox", err=True)
        return summary

    try:
        summary = asyncio.run(poll())
        click.echo(round_table(summary))
        waiting = storage.unsent_alerts()
        if waiting:
            click.echo(f"{len(waiting)} alerts wait in the outbox for the running bot.", err=True)
    finally:
        storage.close()
    if summary.unsaved:
        click.echo(f"{summary.unsaved} posts could not be stored (database error); poll again", err=True)
    if summary.errors:
        sys.exit(1)


@cli.command()
@click.option(
    "--days",
    type=_Days(min=0, min_open=True, max=MAX_STATS_DAYS),
    default=None,
    help=f"Only confirmed flags of the last N days (more than 0, at most {MAX_STATS_DAYS}); default: all time.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=30, show_default=True, help="How many to list.")
@_db_option
@pass_app
def offenders(app, days, limit, db_path):
    """Rank senders and source channels by confirmed flags across all chats: flags per label, chats, first and
    last seen. A channel counts whether it posted or was forwarded from."""
    from bot.offenders import offenders as ranked
    from bot.offenders import offenders_text

    storage = _open_db(app.settings, db_path)
    try:
        click.echo(offenders_text(ranked(storage, days, limit), days, html=False))
    finally:
        storage.close()
