"""How the model does on a way of writing, or a kind of promotion, that it never saw.

Stratified cross-validation mixes every register and genre into every fold, so it measures the model on
posts like those it trained on. Real posts are written in registers and genres the corpus holds thinly or
not at all. Leaving one register (or one genre) out of training and measuring on it estimates that:

- **leave-one-register-out**: for each register, fit on the posts of every other register and predict
  the posts of this one; macro-F1 over the pooled predictions, and per register;
- **leave-one-genre-out**: likewise per genre; a genre's posts share one label, so its figure is the
  recall of that label (for a benign genre: the share left benign);
- **leave-one-source-out**: likewise per corpus file. Each file was written by one writer from one brief,
  so this estimates a voice never seen, in genres and registers that were: the nearest of the three to
  posts in the wild, which nobody on the project wrote.

    python -m classifier.generalisation [--data DIR_OR_FILE …] [--family svm --family logreg] [--by register|genre|source]

Posts without the grouping field are always in training and never measured.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.metrics import recall_score

from classifier.corpus import BUNDLED_DATA_DIR, LabelledPost, Problem, load_corpus
from classifier.fitting import FIT_PROCESSES, Split, fit_and_predict_all
from classifier.genres import GENRES, REGISTERS
from classifier.labels import BENIGN, LABELS, PROMOTION_LABELS
from classifier.model import (
    DEFAULT_C,
    DEFAULT_THRESHOLDS,
    FAMILIES,
    PreparedPost,
    decide,
    prepared_posts,
)
from classifier.report import leave_one_out_markdown, macro_f1

GROUPINGS = ("register", "genre", "source")


class OutOfGroup(NamedTuple):
    """Every post's probabilities from the model trained without its group (rows of posts never
    measured are zero and their group empty)."""

    probabilities: np.ndarray
    classes: list[str]
    groups: np.ndarray


def out_of_group_probabilities(
    posts: Sequence[LabelledPost],
    by: str,
    family: str = "svm",
    C: float = DEFAULT_C,
    log: Callable = print,
    prepared: Sequence[PreparedPost] | None = None,
    processes: int = FIT_PROCESSES,
) -> OutOfGroup:
    """Fit without each group of ``by`` (``register``, ``genre`` or ``source``) and predict that group's posts.
    ``prepared``: the posts already prepared (``prepare_many`` of their texts), when the caller has them."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    prepared = prepared_posts(posts, prepared)
    labels = np.array([p.label for p in posts])
    of_post = np.array([getattr(p, by) for p in posts], dtype=object)
    probabilities = np.zeros((len(posts), len(LABELS)))
    measured = np.array([""] * len(posts), dtype=object)
    classes = sorted(LABELS)  # scikit-learn orders the classes so whenever every label is in training
    held_out = []
    for group in group_names(by, of_post):
        test = of_post == group
        if len(set(labels[~test])) < len(LABELS):
            log(f"  {by} {group}: left in (without it a label has no training post)")
            continue
        held_out.append((group, test))
    splits = [
        Split(
            [x for x, held in zip(prepared, test) if not held],
            labels[~test],
            [x for x, held in zip(prepared, test) if held],
        )
        for _, test in held_out
    ]
    for (group, test), predicted in zip(held_out, fit_and_predict_all(splits, C, family, processes)):
        probabilities[test] = predicted.probabilities
        measured[test] = group
        log(f"  {by} {group}: {int(test.sum())} posts ({predicted.seconds:.1f} s)")
    return OutOfGroup(probabilities, classes, measured)


def nothing_measured(by: str) -> str:
    """What a report says when no group of ``by`` could be left out."""
    return f"nothing measured: no {by} could be left out"


def leave_one_out(
    posts: Sequence[LabelledPost],
    by: str,
    thresholds: dict[str, float] | None = None,
    family: str = "svm",
    log: Callable = print,
    prepared: Sequence[PreparedPost] | None = None,
    processes: int = FIT_PROCESSES,
) -> dict | None:
    """Fit without each group of ``by`` (``register``, ``genre`` or ``source``), predict that group; the figures,
    or None when no group could be left out (no post has the field, or one group holds a whole label)."""
    oog = out_of_group_probabilities(posts, by, family, log=log, prepared=prepared, processes=processes)
    return figures(posts, oog, by, thresholds, family) if (oog.groups != "").any() else None


def figures(
    posts: Sequence[LabelledPost],
    oog: OutOfGroup,
    by: str,
    thresholds: dict[str, float] | None = None,
    family: str = "svm",
) -> dict:
    """Pooled and per-group figures of out-of-group probabilities, with ``thresholds``."""
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    labels = np.array([p.label for p in posts])
    measured = oog.groups != ""
    predicted = np.array([""] * len(posts), dtype=object)
    if measured.any():
        predicted[measured] = decide(oog.probabilities[measured], oog.classes, thresholds)
    per_group = {}
    for group in group_names(by, oog.groups):
        rows = oog.groups == group
        per_group[group] = _group_figures(labels[rows], predicted[rows])
    y_true, y_pred = labels[measured], predicted[measured]
    present = [label for label in LABELS if label in set(y_true)]
    promotion = y_true != BENIGN
    return {
        "by": by,
        "family": family,
        "thresholds": thresholds,
        "posts": int(measured.sum()),
        "macro_f1": macro_f1(y_true, y_pred),
        "recall": {
            label: round(float(recall_score(y_true == label, y_pred == label, zero_division=0)), 4) for label in present
        },
        "promotion_caught": round(float(np.mean(y_pred[promotion] != BENIGN)), 4) if promotion.any() else None,
        "groups": per_group,
    }


def group_names(by: str, of_post: np.ndarray) -> list[str]:
    """The groups of ``by`` present among ``of_post``: registers and genres in their defined order, sources
    (corpus files) sorted."""
    present = {str(g) for g in of_post if g}
    if by == "source":
        return sorted(present)
    return [name for name in (REGISTERS if by == "register" else GENRES) if name in present]


def _group_figures(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    present = [label for label in LABELS if label in set(y_true)]
    figures = {
        "posts": int(len(y_true)),
        "recall": {label: round(float(np.mean(y_pred[y_true == label] == label)), 4) for label in present},
        "promotion_flagged_as_benign": int(np.sum((y_true != BENIGN) & (y_pred == BENIGN))),
        "benign_flagged": int(np.sum((y_true == BENIGN) & (y_pred != BENIGN))),
    }
    if (y_true != BENIGN).any():  # flagged with either promotion label: what an alert needs
        figures["promotion_caught"] = round(float(np.mean(y_pred[y_true != BENIGN] != BENIGN)), 4)
    if len(present) > 1:
        figures["macro_f1"] = macro_f1(y_true, y_pred)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifier.generalisation", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="corpus directory or JSONL file (default: the bundled training_data/)",
    )
    parser.add_argument(
        "--family",
        action="append",
        choices=sorted(FAMILIES),
        help="model family to measure (repeat to compare; default svm)",
    )
    parser.add_argument("--by", action="append", choices=GROUPINGS, help="grouping (default both)")
    for label in PROMOTION_LABELS:
        parser.add_argument(
            f"--threshold-{label.replace('_', '-')}",
            type=float,
            default=None,
            help=f"probability threshold for {label} (default {DEFAULT_THRESHOLDS[label]})",
        )
    args = parser.parse_args(argv)
    problems: list[Problem] = []
    posts = load_corpus(args.data or [BUNDLED_DATA_DIR], problems)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    thresholds = {
        label: value for label in PROMOTION_LABELS if (value := getattr(args, f"threshold_{label}")) is not None
    }
    for family in args.family or ["svm"]:
        for by in args.by or GROUPINGS:
            print(f"Leave-one-{by}-out, {family}:")
            result = leave_one_out(posts, by, thresholds, family)
            print(leave_one_out_markdown(result) if result else nothing_measured(by) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
