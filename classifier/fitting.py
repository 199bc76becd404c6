"""Fits on part of the corpus, predictions on the rest: many at once, in worker processes.

Training fits a pipeline for every cross-validation fold and every left-out register (eleven fits on
the 19,411-post corpus), and the quality gate two more; ``--leave-out genre`` adds one per genre. The fits
are independent, so :func:`fit_and_predict_all` runs them :data:`FIT_PROCESSES` at a time in joblib's
worker processes.

Processes, not threads: liblinear (the SVM) releases the GIL, but its random generator, with which its
coordinate descent shuffles the posts, is one global per process, so two fits on threads of one process
draw from it in turn and their models (and every figure) would change from run to run. In processes each
fit runs alone, as it would one after another: the same probabilities to the last bit (a test checks).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from joblib import Parallel, cpu_count, delayed

from classifier.model import DEFAULT_C, PreparedPost, build_pipeline, fit_prepared

# Two: each worker holds a copy of the posts it fits on and its own fit (on 19,411 posts a fit peaks near
# 500 MB), and the bot may retrain on a small server. A machine with one core fits in this process.
FIT_PROCESSES = min(2, cpu_count())


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
    probabilities = pipeline[1:].predict_proba(list(split.test))
    return Predicted(list(pipeline.classes_), probabilities, time.perf_counter() - started)


def fit_and_predict_all(
    splits: Sequence[Split], C: float = DEFAULT_C, family: str = "svm", processes: int = FIT_PROCESSES
) -> Iterator[Predicted]:
    """:func:`fit_and_predict` of every split, in the splits' order, ``processes`` at a time; each result
    as soon as it and those before it are done."""
    if processes <= 1 or len(splits) <= 1:
        return (fit_and_predict(split, C, family) for split in splits)
    return Parallel(n_jobs=processes, return_as="generator")(
        delayed(fit_and_predict)(split, C, family) for split in splits
    )
