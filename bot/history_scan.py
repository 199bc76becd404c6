"""The history scan behind ``compliance-bot scan``: posts from exports and JSONL files, classified and stored.

Scanned posts are stored a batch at a time by :meth:`Storage.record_scans`, which stores what
:meth:`Storage.record_scan` stores for a live post, so a post seen in an export and live is one row and an
edit is a new version. Flags found in history never alert one by one (a year of a channel would flood the
moderators); they wait in the review queue (/pending) and in the digest, and ``scan --alert`` sends a digest
of them at once.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import signal
import sqlite3
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import IO

from bot.desktop_export import ExportError, ReadCounts, position_of, read_export
from bot.export_images import ExportPictures
from bot.image_text import ImageReader
from bot.jsonl_posts import read_jsonl
from bot.post import Post
from bot.scan_summary import FileSummary, ScanSummary
from bot.storage import Storage

BATCH = 1000  # posts classified together and stored in one transaction
IN_FLIGHT_PER_WORKER = 2  # batches handed to each worker ahead of storing: enough to keep it busy, bounded memory
WORKER_NICENESS = 10
TOP_FLAGS = 5
NEVER_ALERT = float("inf")  # the alert threshold for history: flags go to the queue and the digest


class _Chats:
    """Chat usernames already known from live updates: an export has none, and must not erase them."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.known: dict[int, str | None] = {}

    def username(self, chat_id: int) -> str | None:
        if chat_id not in self.known:
            row = self.storage.chat(chat_id)
            self.known[chat_id] = row["username"] if row else None
        return self.known[chat_id]


def scan_files(
    paths: Iterable[Path],
    storage: Storage,
    classifier,
    *,
    report: Callable[[str], None],
    store_benign_text: bool = False,
    progress: Callable | None = None,
    workers: int = 1,
    images: ImageReader | None = None,
) -> ScanSummary:
    """Scan every file, storing posts and flags; a bad file is reported and the next one is read.

    ``progress(path, size)`` returns a context manager with ``update(n_bytes)`` (click's progress bar).
    With ``workers`` > 1, batches are classified in that many worker processes while this process reads
    and stores; results are stored in reading order, so what is stored is the same as with one worker.
    A database error, Ctrl-C or a worker that dies stops the scan (the batches stored so far stay);
    rerunning continues, since posts already stored are recognised as duplicates. With ``images`` (an OCR
    reader) the pictures of exports made with media are read and their text scanned with the post.
    """
    summary = ScanSummary(started=storage.clock())
    pipeline = _Pipeline(classifier, workers, storage, summary, store_benign_text, report)
    try:
        for path in map(Path, paths):
            _scan_file(path, pipeline, summary, report, progress, images)
        pipeline.drain()
    except _StoreError as exc:
        summary.database_error = (
            f"database error while storing {exc.path} ({exc.error}); the batches stored before "
            "it are kept; run the scan again to continue (stored posts are not stored twice)"
        )
        report(summary.database_error)
    except KeyboardInterrupt:
        summary.interrupted = True
        summary.stopped = (
            "interrupted: the batches stored before are kept; run the scan again to continue "
            "(stored posts are not stored twice)"
        )
        report(summary.stopped)
    except BrokenProcessPool as exc:
        summary.stopped = (
            f"a classification worker stopped unexpectedly ({exc}); the batches stored before are "
            "kept; run the scan again to continue, with --workers 1 if it happens again"
        )
        report(summary.stopped)
    finally:
        pipeline.close()
    summary.finished = storage.clock()
    _link_top_flags(storage, summary)
    return summary


def _link_top_flags(storage: Storage, summary: ScanSummary) -> None:
    """Give the most confident flags their post links, as the database makes them (bot/storage.py's
    flag_rows); a post Telegram cannot link keeps its "chat … message …"."""
    try:  # the heap holds each flag's id negated
        links = storage.flag_links(-negated_id for _, negated_id, _, _ in summary.top)
    except sqlite3.Error:  # the database failed during the scan, and the summary is said anyway
        return
    for _, negated_id, _, entry in summary.top:
        entry["link"] = links.get(-negated_id) or entry["link"]


def _scan_file(
    path: Path,
    pipeline: _Pipeline,
    summary: ScanSummary,
    report: Callable[[str], None],
    progress: Callable | None,
    images: ImageReader | None = None,
) -> None:
    file_summary = FileSummary(str(path))
    summary.files.append(file_summary)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        file_summary.error = f"{path}: cannot open ({exc.strerror or exc})"
        report(file_summary.error)
        return
    with handle:
        size = path.stat().st_size if path.is_file() else 0
        bar = progress(path, size) if progress else None
        where = position_of(handle)
        done = 0
        batch: list[Post] = []
        try:
            with bar if bar is not None else _nothing():
                pictures = ExportPictures(images, path.parent, file_summary.pictures, report) if images else None
                for post in read_posts(path, handle, report, file_summary.counts, pictures):
                    batch.append(post)
                    if len(batch) >= BATCH:
                        pipeline.put(batch, file_summary)
                        batch = []
                        if bar is not None:
                            now = where()
                            bar.update(max(0, now - done))
                            done = now
                pipeline.put(batch, file_summary)
                if bar is not None:
                    bar.update(max(0, size - done))
        except ExportError as exc:
            pipeline.put(batch, file_summary)
            file_summary.error = str(exc)
            report(file_summary.error)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _StoreError(Exception):
    """A database error, with the file whose batch was being stored (not always the file being read)."""

    def __init__(self, path: str, error: sqlite3.Error):
        super().__init__(path, error)
        self.path, self.error = path, error


class _Pipeline:
    """Batches go in as they are read and are stored in the same order; this process is the only writer.

    With one worker a batch is classified and stored at once, in this process. With more, classifying moves
    to worker processes (reading a stream and the one SQLite writer cannot be split); at most
    IN_FLIGHT_PER_WORKER batches a worker wait for their verdicts, so the posts held do not grow with the file
    whatever the speed of either side.
    """

    def __init__(
        self,
        classifier,
        workers: int,
        storage: Storage,
        summary: ScanSummary,
        store_benign_text: bool,
        report: Callable[[str], None] = lambda message: None,
    ):
        self.classifier, self.workers, self.report = classifier, max(1, workers), report
        self.storage, self.summary, self.store_benign_text = storage, summary, store_benign_text
        self.chats = _Chats(storage)
        self.in_flight = 0 if self.workers == 1 else IN_FLIGHT_PER_WORKER * self.workers
        self.pending: deque[tuple[list[Post], FileSummary, Future]] = deque()
        self.pool: ProcessPoolExecutor | None = None

    def put(self, batch: list[Post], file_summary: FileSummary) -> None:
        if batch:
            self.pending.append((batch, file_summary, self._classify([p.text for p in batch])))
        while self.pending and (len(self.pending) > self.in_flight or self.pending[0][2].done()):
            self._store_oldest()

    def drain(self) -> None:
        while self.pending:
            self._store_oldest()

    def close(self) -> None:
        """Stop the workers; verdicts not stored yet are dropped (a rerun classifies them again)."""
        self.pending.clear()
        if self.pool is not None:
            # A second Ctrl-C during this wait would leave the workers running with nobody to stop them.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                self.pool.shutdown(wait=True, cancel_futures=True)
            finally:
                signal.signal(signal.SIGINT, previous)
            self.pool = None

    def _classify(self, texts: list[str]) -> Future:
        if self.workers == 1:
            done: Future = Future()
            done.set_result(self.classifier.predict_many(texts))
            return done
        if self.pool is not None:
            return self.pool.submit(_worker_classify, texts)
        # With fork the first submit starts every worker and only then the thread that can stop them: a
        # Ctrl-C in between would leave forked workers that nothing stops. The workers unblock it themselves.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=_worker_context(), initializer=_worker_start, initargs=(self.classifier,)
            )
            return self.pool.submit(_worker_classify, texts)
        except OSError as exc:  # fork refused: out of memory or processes
            self._stop_pool_now()
            self.report(
                f"could not start {self.workers} worker processes ({exc.strerror or exc}); "
                "classifying in this process instead"
            )
            self.workers, self.in_flight = 1, 0
            return self._classify(texts)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _stop_pool_now(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
        for child in multiprocessing.active_children():  # the workers forked before the failure
            child.terminate()
            child.join(5)

    def _store_oldest(self) -> None:
        batch, file_summary, verdicts = self.pending[0]
        verdicts = verdicts.result()
        try:
            _store(batch, verdicts, self.storage, self.chats, file_summary, self.summary, self.store_benign_text)
        except sqlite3.Error as exc:
            raise _StoreError(file_summary.path, exc) from None
        self.pending.popleft()


def _worker_context():
    # Forked workers inherit the model already loaded here (no second load, no pickled copy of it, any
    # classifier object works); the scan is single-threaded when it forks. Elsewhere the model is pickled.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


_worker_model = None


def _worker_start(classifier) -> None:
    global _worker_model
    _worker_model = classifier
    # Ctrl-C reaches the whole process group: the main process stops the scan and the pool; a worker that
    # took it too would print a traceback of its own. The main process blocked it while forking us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # The main process (reading and storing) sets the pace, and with N workers there is one process more
    # than cores: workers that yield to it keep it running. 50,000 posts on 2 cores: 8.6-9.6 s against
    # 10.2 s without (quiet runs; the machine is noisy).
    os.nice(WORKER_NICENESS)


def _worker_classify(texts: list[str]) -> list:
    verdicts = _worker_model.predict_many(texts)
    # A benign post's reasons are never stored; leaving them out makes the verdicts about three times cheaper
    # to unpickle in the main process, which reads and stores everything and so sets the pace.
    return [v if v.is_promotion else replace(v, reasons=[]) for v in verdicts]


def _store(
    batch: list[Post],
    verdicts: list,
    storage: Storage,
    chats: _Chats,
    file_summary: FileSummary,
    summary: ScanSummary,
    store_benign_text: bool,
) -> None:
    # Counted apart and added to the summary once the transaction commits: a batch rolled back by Ctrl-C
    # or a database error must not appear in the report.
    stored = duplicates = 0
    flags, flags_by_chat, found = Counter(), Counter(), []
    posts = [
        replace(post, chat_username=chats.username(post.chat_id) or None) if post.chat_username is None else post
        for post in batch
    ]
    # One transaction, a few statements a batch (Storage.record_scans): storing sets the pace of a scan.
    outcomes = storage.record_scans(zip(posts, verdicts), threshold=NEVER_ALERT, store_benign_text=store_benign_text)
    for post, verdict, outcome in zip(posts, verdicts, outcomes):
        if outcome.duplicate:
            duplicates += 1
            continue
        stored += 1
        if outcome.flag_id is not None and not outcome.withdrawn:
            flags[verdict.label] += 1
            chat = post.chat_title or str(post.chat_id)
            flags_by_chat[chat] += 1
            # The link is looked up once the scan is over (_link_top_flags): only the top flags need one.
            found.append(
                (
                    verdict.score,
                    -outcome.flag_id,
                    {
                        "label": verdict.label,
                        "score": verdict.score,
                        "chat": chat,
                        "link": f"chat {post.chat_id} message {post.message_id}",
                        "text": post.text,
                    },
                )
            )
    file_summary.stored += stored
    file_summary.duplicates += duplicates
    file_summary.flags.update(flags)
    summary.flags_by_chat.update(flags_by_chat)
    for score, flag, entry in found:
        summary.flags_seen += 1
        item = (score, flag, summary.flags_seen, entry)
        if len(summary.top) < TOP_FLAGS:
            heapq.heappush(summary.top, item)
        else:
            heapq.heappushpop(summary.top, item)


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson")


def read_posts(
    path: Path,
    handle: IO[bytes],
    report: Callable[[str], None],
    counts: ReadCounts,
    pictures: ExportPictures | None = None,
) -> Iterator[Post]:
    """Posts of one file: JSONL by its extension, otherwise a Telegram Desktop export (with its pictures read)."""
    if is_jsonl(path):
        return read_jsonl(handle, str(path), report, counts)
    return read_export(handle, str(path), report, counts, pictures)
