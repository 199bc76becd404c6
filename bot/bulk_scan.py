"""``compliance-bot bulk-scan``: archives of posts classified on a Dask cluster, written out as Parquet.

The client expands the inputs into partitions (:mod:`bot.bulk_inputs`) and submits one task a partition.
A task runs where a worker is: it reads its partition, classifies it with the model its worker loaded once
(:class:`ModelPlugin`), and writes its own Parquet part file, named by the partition, to a temporary name
first and then renamed: a partition computed again after its worker was lost replaces its own file, and
a half-written file is never read. What comes back to the client is a few counters a partition; the
posts and verdicts never leave the workers. Without a scheduler address the cluster is local: worker
processes on this machine.

The client, the scheduler and every worker must see the inputs, the output directory and the model under
the same paths (one machine, or a shared filesystem).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from distributed import WorkerPlugin, get_worker

from bot.bulk_inputs import ArchivePost, Partition, expand_inputs, read_partition
from bot.desktop_export import ExportError, ReadCounts

FLAGS_DIR = "flags"  # one row a flag
VERDICTS_DIR = "verdicts"  # with --all: one row a post
SUMMARY_FILE = "summary.json"
PLUGIN_NAME = "compliance-bot-model"
BATCH = 1000  # posts classified together
ROWS_PER_GROUP = 10_000  # rows a Parquet row group holds; a task holds at most this many rows
PROBLEMS_KEPT = 20  # problem lines a partition reports by name (all are counted)
CONNECT_TIMEOUT = "10s"


class BulkScanError(Exception):
    """The scan cannot start: the output directory, the scheduler; the message says why."""


def output_schema():
    """The columns of the Parquet dataset, one row a flag (or, with --all, a post)."""
    import pyarrow as pa

    from classifier import LABELS

    return pa.schema(
        [
            ("chat", pa.string()),  # the Bot API chat id as text, or the channel's name
            ("chat_id", pa.int64()),  # the Bot API chat id, when the input has one
            ("message_id", pa.int64()),
            ("date", pa.timestamp("s", tz="UTC")),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("scores", pa.struct([(label, pa.float64()) for label in LABELS])),
            (
                "reasons",
                pa.list_(pa.struct([("kind", pa.string()), ("feature", pa.string()), ("weight", pa.float64())])),
            ),
            ("model_version", pa.string()),
            ("language", pa.string()),
            ("watchlist", pa.list_(pa.string())),  # the listed platforms the post names or links (issue 11)
            ("chat_title", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),  # the input file
        ]
    )


# -- on the workers ------------------------------------------------------------------------------
class ModelPlugin(WorkerPlugin):
    """Loads the model once in every worker, new ones and restarted ones included: only its path travels."""

    name = PLUGIN_NAME

    def __init__(self, model_path: str):
        self.model_path = model_path
        self.model = None

    def setup(self, worker):
        from classifier import load_model

        self.model = load_model(Path(self.model_path))


def _worker_model():
    return get_worker().plugins[PLUGIN_NAME].model


def scan_partition(partition: Partition, *, out_dir: str, write_all: bool) -> dict:
    """Read, classify and write one partition (a Dask task); returns its counters."""
    model = _worker_model()
    counts = ReadCounts()
    problems: list[str] = []

    def report(message: str) -> None:
        if len(problems) < PROBLEMS_KEPT:
            problems.append(message)

    final = Path(out_dir) / f"part-{partition.key}.parquet"
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    part = _PartWriter(temporary, partition.path, write_all)
    error = None
    batch: list[ArchivePost] = []
    try:
        try:
            for post in read_partition(partition, report, counts):
                batch.append(post)
                if len(batch) >= BATCH:
                    part.add(batch, model.predict_many([p.text for p in batch]))
                    batch = []
        except ExportError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"{partition.path}: cannot read ({exc.strerror or exc})"
        if batch:
            part.add(batch, model.predict_many([p.text for p in batch]))
        part.close()
        _publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return {
        "partition": partition.name,
        "path": partition.path,
        "messages": counts.messages,
        "posts": counts.posts,
        "no_text": counts.no_text + counts.service,
        "skipped_lines": counts.skipped,
        "problems": problems,
        "error": error,
        "flags": dict(part.flags),
        "flags_by_chat": dict(part.flags_by_chat),
        "posts_by_platform": dict(part.posts_by_platform),
        "rows": part.rows,
        "model_version": model.version,
        "worker": get_worker().address,
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _publish(temporary: Path, final: Path) -> None:
    """Put a finished part file in place: a rename, so readers see the whole file or none, and a partition
    computed twice leaves one file."""
    os.replace(temporary, final)


class _PartWriter:
    """The rows of one partition, written as row groups of ROWS_PER_GROUP to one Parquet file."""

    def __init__(self, path: Path, source: str, write_all: bool):
        import pyarrow.parquet as pq

        self.schema = output_schema()
        self.writer = pq.ParquetWriter(path, self.schema)
        self.source, self.write_all = source, write_all
        self.columns: dict[str, list] = {name: [] for name in self.schema.names}
        self.flags: Counter = Counter()
        self.flags_by_chat: Counter = Counter()
        self.posts_by_platform: Counter = Counter()
        self.rows = 0

    def add(self, posts: list[ArchivePost], verdicts: list) -> None:
        columns = self.columns
        for post, verdict in zip(posts, verdicts):
            platforms = verdict.platforms
            self.posts_by_platform.update(platforms)
            if verdict.is_promotion:
                self.flags[verdict.label] += 1
                self.flags_by_chat[post.chat] += 1
            elif not self.write_all:
                continue
            columns["chat"].append(post.chat)
            columns["chat_id"].append(post.post.chat_id if post.post is not None else None)
            columns["message_id"].append(post.message_id)
            columns["date"].append(None if post.date is None else int(post.date))
            columns["label"].append(verdict.label)
            columns["score"].append(verdict.score)
            columns["scores"].append(verdict.scores)
            columns["reasons"].append(
                [{"kind": r.kind, "feature": r.feature, "weight": float(r.weight)} for r in verdict.reasons]
            )
            columns["model_version"].append(verdict.model_version)
            columns["language"].append(verdict.language)
            columns["watchlist"].append(platforms)
            columns["chat_title"].append(post.chat_title)
            columns["text"].append(post.text)
            columns["source"].append(self.source)
        if len(columns["chat"]) >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        n = len(self.columns["chat"])
        if n:
            self.writer.write_table(pa.Table.from_pydict(self.columns, schema=self.schema))
            self.rows += n
            self.columns = {name: [] for name in self.schema.names}

    def close(self) -> None:
        self._flush()
        self.writer.close()


# -- in the client -------------------------------------------------------------------------------
@contextmanager
def dask_client(scheduler: str | None, workers: int):
    """A client of the scheduler at ``scheduler``, or of a local cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BulkScanError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc or type(exc).__name__})"
            ) from None
        with client:
            yield client
        return
    # One thread a worker: the classifier holds the GIL, so processes are what scale on one machine.
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def dashboard_link(client) -> str | None:
    """The Dask dashboard's address, when the scheduler serves one: its web server runs without bokeh too,
    but shows no dashboard then."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        if not client.run_on_scheduler(_has_bokeh):
            return None
    except Exception:  # a scheduler that went away: no link is all that is lost
        return None
    return client.dashboard_link


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def prepare_output(out: Path, write_all: bool) -> Path:
    """The dataset directory under ``out``, emptied of an earlier bulk-scan's output; refuses a directory that
    holds anything else, which a scan must not mix with or delete."""
    if out.exists() and not out.is_dir():
        raise BulkScanError(f"--out {out} is a file: give a directory (new or from an earlier bulk-scan)")
    ours = {SUMMARY_FILE, FLAGS_DIR, VERDICTS_DIR}
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in ours)
        if others:
            raise BulkScanError(
                f"--out {out} holds other files ({', '.join(others[:3])}{', …' if len(others) > 3 else ''}): "
                "give a new directory, or one an earlier bulk-scan wrote"
            )
        for name in (FLAGS_DIR, VERDICTS_DIR):
            for old in (out / name).glob("*part-*.parquet*") if (out / name).is_dir() else ():
                old.unlink()
        (out / SUMMARY_FILE).unlink(missing_ok=True)
    dataset = out / (VERDICTS_DIR if write_all else FLAGS_DIR)
    try:
        dataset.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BulkScanError(f"--out {out}: cannot create it ({exc.strerror or exc})") from None
    return dataset


def bulk_scan(
    client,
    inputs: Iterable[str],
    out: Path,
    *,
    model_path: Path,
    write_all: bool = False,
    progress: Callable[[int], object] | None = None,
) -> dict:
    """Scan every input on the client's cluster; writes the dataset and summary.json under ``out`` and
    returns the summary. ``progress(n)`` returns a context manager with ``update(k)`` (click's bar)."""
    from distributed import as_completed

    started = time.time()
    out = out.resolve()
    dataset = prepare_output(out, write_all)
    partitions, skipped = expand_inputs([os.path.abspath(i) for i in inputs])
    try:
        client.register_plugin(ModelPlugin(str(Path(model_path).resolve())), name=PLUGIN_NAME)
    except Exception as exc:  # raised on a worker: the model file is not there, or not that model
        raise BulkScanError(f"the workers cannot load the model {model_path}: {_one_line(exc)}") from None
    run = uuid.uuid4().hex[:8]
    # Keys name the partition (and this run, so that a scheduler shared with an earlier run recomputes).
    keys = [f"bulk-scan-{run}-{p.key}" for p in partitions]
    futures = dict(
        zip(client.map(scan_partition, partitions, out_dir=str(dataset), write_all=write_all, key=keys), partitions)
    )
    results, failed = [], []
    bar = progress(len(futures)) if progress else None
    with bar if bar is not None else _nothing():
        for future in as_completed(futures):
            try:
                results.append(future.result())
            except Exception as exc:  # a bug, or a partition whose workers kept dying (KilledWorker)
                failed.append({"input": futures[future].name, "reason": f"the partition failed: {_one_line(exc)}"})
            future.release()
            if bar is not None:
                bar.update(1)
    for leftover in dataset.glob(".*.tmp"):  # from a worker killed between writing and renaming
        leftover.unlink(missing_ok=True)
    summary = _summary(results, skipped + failed, partitions, started, dataset, out, write_all)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _summary(results, skipped, partitions, started, dataset, out, write_all) -> dict:
    flags, by_chat, by_platform, workers = Counter(), Counter(), Counter(), {}
    problems, versions = [], set()
    for r in results:
        flags.update(r["flags"])
        by_chat.update(r["flags_by_chat"])
        by_platform.update(r["posts_by_platform"])
        workers[r["worker"]] = max(workers.get(r["worker"], 0), r["worker_peak_rss_mb"])
        versions.add(r["model_version"])
        problems += r["problems"]
        if r["error"]:
            skipped.append({"input": r["partition"], "reason": r["error"]})
    finished = time.time()
    posts = sum(r["posts"] for r in results)
    return {
        "inputs": sorted({p.path for p in partitions}),
        "partitions": len(partitions),
        "dataset": str(dataset.relative_to(out)),
        "rows": "every post" if write_all else "one a flag",
        "messages": sum(r["messages"] for r in results),
        "posts": posts,
        "no_text": sum(r["no_text"] for r in results),
        "flags": sum(flags.values()),
        "flags_per_label": dict(sorted(flags.items())),
        "flags_per_chat": dict(by_chat.most_common()),
        # Posts (flagged or not) that name or link a platform of the bundled watchlist.
        "posts_per_listed_platform": dict(by_platform.most_common()),
        "skipped_inputs": skipped,
        "skipped_lines": sum(r["skipped_lines"] for r in results),
        "problems": problems[:100],
        "model_version": ", ".join(sorted(versions)) or None,
        "workers": {address: {"peak_rss_mb": rss} for address, rss in sorted(workers.items())},
        "started": _iso(started),
        "finished": _iso(finished),
        "seconds": round(finished - started, 2),
        "posts_per_second": round(posts / max(finished - started, 1e-9), 1),
    }


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
