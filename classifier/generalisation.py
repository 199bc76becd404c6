"""How the model does on a way of writing, or a kind of promotion, that it never saw.

Stratified cross-validation mixes every register and genre into every fold, so it measures the model on
posts like those it trained on. Real posts are written in registers and genres the corpus holds thinly or
not at all. Leaving one register (or one genre) out of training and measuring on it estimates that:

- **leave-one-register-out**: for each register, fit on the posts of every other register and predict
  the posts of this one; macro-F1 over the pooled predictions, and per register;
- **leave-one-genre-out**: likewise per genre; a genre's posts share one label, so its figure is the
  recall of that label (for a benign genre: the share left benign).

    python -m classifier.generalisation [--data DIR_OR_FILE …] [--family svm --family logreg] [--by register]

Posts without the grouping field are always in training and never measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import f1_score, recall_score

from classifier.corpus import BUNDLED_DATA_DIR, LabelledPost, Problem, load_corpus
from classifier.genres import GENRES, REGISTERS
from classifier.labels import BENIGN, LABELS, PROMOTION_LABELS
from classifier.model import DEFAULT_THRESHOLDS, FAMILIES, build_pipeline, decide
from classifier.report import leave_one_out_markdown

GROUPINGS = ("register", "genre")


def leave_one_out(posts: Sequence[LabelledPost], by: str, thresholds: dict[str, float] | None = None,
                  family: str = "svm", log: Callable = print) -> dict:
    """Fit without each group of ``by`` (``register`` or ``genre``), predict that group; the figures."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    names = REGISTERS if by == "register" else GENRES
    groups = [g for g in names if any(getattr(p, by) == g for p in posts)]
    texts = [p.text for p in posts]
    labels = np.array([p.label for p in posts])
    predicted = np.array([""] * len(posts), dtype=object)
    per_group: dict[str, dict] = {}
    for group in groups:
        test = np.array([getattr(p, by) == group for p in posts])
        if len(set(labels[~test])) < len(LABELS):
            log(f"  {by} {group}: left in (without it a label has no training post)")
            continue
        started = time.perf_counter()
        pipeline = build_pipeline(family=family).fit([t for t, held in zip(texts, test) if not held], labels[~test])
        probabilities = pipeline.predict_proba([t for t, held in zip(texts, test) if held])
        predicted[test] = decide(probabilities, list(pipeline.classes_), thresholds)
        per_group[group] = _group_figures(labels[test], predicted[test])
        log(f"  {by} {group}: {per_group[group]['posts']} posts, {_headline(per_group[group])} "
            f"({time.perf_counter() - started:.1f} s)")
    measured = predicted != ""
    y_true, y_pred = labels[measured], predicted[measured]
    present = [label for label in LABELS if label in set(y_true)]
    return {
        "by": by,
        "family": family,
        "thresholds": thresholds,
        "posts": int(measured.sum()),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), 4),
        "recall": {label: round(float(recall_score(y_true == label, y_pred == label, zero_division=0)), 4)
                   for label in present},
        "groups": per_group,
    }


def _group_figures(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    present = [label for label in LABELS if label in set(y_true)]
    figures = {
        "posts": int(len(y_true)),
        "recall": {label: round(float(np.mean(y_pred[y_true == label] == label)), 4) for label in present},
        "promotion_flagged_as_benign": int(np.sum((y_true != BENIGN) & (y_pred == BENIGN))),
        "benign_flagged": int(np.sum((y_true == BENIGN) & (y_pred != BENIGN))),
    }
    if len(present) > 1:
        figures["macro_f1"] = round(float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), 4)
    return figures


def _headline(figures: dict) -> str:
    recalls = ", ".join(f"recall {label} {value:.3f}" for label, value in figures["recall"].items())
    return (f"macro-F1 {figures['macro_f1']:.3f}, " if "macro_f1" in figures else "") + recalls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifier.generalisation", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append",
                        help="corpus directory or JSONL file (default: the bundled training_data/)")
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES),
                        help="model family to measure (repeat to compare; default svm)")
    parser.add_argument("--by", action="append", choices=GROUPINGS, help="grouping (default both)")
    for label in PROMOTION_LABELS:
        parser.add_argument(f"--threshold-{label.replace('_', '-')}", type=float, default=None,
                            help=f"probability threshold for {label} (default {DEFAULT_THRESHOLDS[label]})")
    args = parser.parse_args(argv)
    problems: list[Problem] = []
    posts = load_corpus(args.data or [BUNDLED_DATA_DIR], problems)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    thresholds = {label: value for label in PROMOTION_LABELS
                  if (value := getattr(args, f"threshold_{label}")) is not None}
    for family in args.family or ["svm"]:
        for by in args.by or GROUPINGS:
            print(f"Leave-one-{by}-out, {family}:")
            print(leave_one_out_markdown(leave_one_out(posts, by, thresholds, family)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
