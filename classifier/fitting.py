"""Fits on part of the corpus, predictions on the rest: many at once, in worker processes.

Training fits a pipeline for every cross-validation fold and every left-out register (eleven fits on
the 20,791-post corpus), and the quality gate two more; ``--leave-out genre`` adds one per genre. The fits
are independent, so :func:`fit_and_predict_all` runs them :data:`FIT_PROCESSES` at a time in worker
processes (``compliance-bot train --jobs``).

Processes, not threads: liblinear (the SVM) releases the GIL, but its random generator, with which its
coordinate descent shuffles the posts, is one global per process, so two fits on threads of one process
draw from it in turn and their models (and every figure) would change from run to run. In processes each
fit runs alone, as it would one after another: the same probabilities to the last bit (a test checks).
The workers are started for each batch of fits and gone when it ends: the bot may train on first use
inside its own process, and nothing of training should outlive it there (joblib's ``Parallel`` keeps its
workers for reuse). They come from loky, the process pool joblib ships: it starts workers fresh (fork
then exec, safe in a process with threads, as the bot's is), and unlike the standard library's spawn it
does not run the caller's script again in each worker, so a plain script calling :func:`train` without an
``if __name__ == "__main__"`` guard works.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import NamedTuple

import numpy as np
from joblib.externals.loky import ProcessPoolExecutor

from classifier.model import DEFAULT_C, PreparedPost, build_pipeline, fit_prepared, probabilities_with_passages

# Two: each worker holds a copy of the posts it fits on and its own fit (about 0.9 GB at the peak of a fit
# on the 20,791-post corpus), and the bot may retrain on a small server. One core: fits in this process.
FIT_PROCESSES = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class Split(NamedTuple):
    """Fit on ``train`` (prepared posts and their labels), predict ``test``."""

    train: Sequence[PreparedPost]
    labels: Sequence[str]
    test: Sequence[PreparedPost]


class Predicted(NamedTuple):
    classes: list[str]
    probabilities: np.ndarray
    seconds: float


def fit_and_predict(split: Split, C: float = DEFAULT_C, family: str = "svm") -> Predicted:
    """Fit a fresh pipeline on the split's training posts and predict its test posts."""
    started = time.perf_counter()
    pipeline = fit_prepared(build_pipeline(C=C, family=family), list(split.train), np.asarray(split.labels))
    probabilities = probabilities_with_passages(list(split.test), pipeline[1:].predict_proba, pipeline.classes_)
    return Predicted(list(pipeline.classes_), probabilities, time.perf_counter() - started)


def fit_and_predict_all(
    splits: Sequence[Split], C: float = DEFAULT_C, family: str = "svm", processes: int = FIT_PROCESSES
) -> Iterator[Predicted]:
    """:func:`fit_and_predict` of every split, in the splits' order, ``processes`` at a time; each result
    as soon as it and those before it are done. The worker processes end with the last result."""
    if processes <= 1 or len(splits) <= 1:
        yield from (fit_and_predict(split, C, family) for split in splits)
        return
    pool = ProcessPoolExecutor(min(processes, len(splits)))
    try:
        yield from pool.map(fit_and_predict, splits, repeat(C), repeat(family))
    finally:
        pool.shutdown(wait=True, kill_workers=True)  # on an early stop, the fits still running too
