"""Train the classifier: cross-validate, tune thresholds, report, pass the quality gate, save.

    python -m classifier.train [--data DIR_OR_FILE …] [--extra FILE.jsonl …] [--model PATH] [--force]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import product
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from classifier.corpus import BUNDLED_DATA_DIR, LabelledPost, Problem, corpus_hash, load_corpus
from classifier.labels import LABELS, PROMOTION_LABELS
from classifier.model import PromotionClassifier, build_pipeline, decide
from classifier.report import compute_metrics, to_markdown, write_reports

DEFAULT_MODEL_PATH = Path("data") / "model.joblib"
GATE_TOLERANCE = 0.01
MAX_HARD_FP = 0.05  # the target for real posts, applied to the out-of-fold predictions
THRESHOLD_GRID = np.round(np.arange(0.20, 0.91, 0.05), 2)


@dataclass
class TrainingResult:
    model: PromotionClassifier
    metrics: dict
    thresholds: dict[str, float]
    posts: int
    data_hash: str
    seconds: float
    problems: list[Problem] = field(default_factory=list)


def tune_thresholds(
    y_true: Sequence[str], probabilities: np.ndarray, classes: Sequence[str],
    hard: Sequence[bool] | None = None, max_hard_fp: float = MAX_HARD_FP,
) -> dict[str, float]:
    """Per-label thresholds that maximise macro-F1 on out-of-fold predictions, among those that keep
    false positives on crypto-related benign posts (``hard``) at or under ``max_hard_fp`` when any does.
    Ties go to the higher (more precise) thresholds, since a false alarm costs a moderator's time."""
    hard_rows = np.array([bool(h) for h in hard]) if hard is not None else np.zeros(len(y_true), bool)
    candidates = []
    for combo in product(THRESHOLD_GRID, repeat=len(PROMOTION_LABELS)):
        thresholds = dict(zip(PROMOTION_LABELS, map(float, combo)))
        predicted = decide(probabilities, classes, thresholds)
        score = f1_score(y_true, predicted, labels=list(LABELS), average="macro", zero_division=0)
        hard_fp = float(np.mean([p != "benign" for p, h in zip(predicted, hard_rows) if h])) if hard_rows.any() else 0.0
        candidates.append((hard_fp <= max_hard_fp, round(score, 9), sum(combo), thresholds))
    return max(candidates, key=lambda c: c[:3])[3]


def cross_validate(posts: Sequence[LabelledPost], folds: int = 5, seed: int = 0):
    """Out-of-fold probabilities for every post (each predicted by a model that never saw it)."""
    texts = [p.text for p in posts]
    labels = np.array([p.label for p in posts])
    strata = np.array([f"{p.label}/{p.lang}" for p in posts])
    probabilities = np.zeros((len(posts), len(LABELS)))
    classes = None
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, strata):
        pipeline = clone(build_pipeline()).fit([texts[i] for i in train_idx], labels[train_idx])
        classes = list(pipeline.classes_)
        probabilities[test_idx] = pipeline.predict_proba([texts[i] for i in test_idx])
    return probabilities, classes


def train(posts: Sequence[LabelledPost], *, folds: int = 5, log: Callable = print) -> TrainingResult:
    """Cross-validate for the report and the thresholds, then fit the final model on every post."""
    started = time.perf_counter()
    y = [p.label for p in posts]
    missing = [label for label in LABELS if y.count(label) < folds]
    if missing:
        raise ValueError(f"too few posts labelled {', '.join(missing)} to train (need at least {folds} each)")
    log(f"Cross-validating on {len(posts)} posts ({folds} folds)…")
    probabilities, classes = cross_validate(posts, folds)
    thresholds = tune_thresholds(y, probabilities, classes, [p.hard for p in posts])
    predicted = decide(probabilities, classes, thresholds)
    metrics = compute_metrics(y, predicted, [p.lang for p in posts], [p.hard for p in posts])
    metrics["evaluation"] = f"{folds}-fold stratified cross-validation on the training corpus"
    log("Fitting the final model on all posts…")
    pipeline = build_pipeline().fit([p.text for p in posts], y)
    data_hash = corpus_hash(posts)
    created = datetime.now(timezone.utc)
    model = PromotionClassifier(pipeline, thresholds, version=f"{created:%Y%m%d-%H%M%S}-{data_hash[:8]}")
    return TrainingResult(model, metrics, thresholds, len(posts), data_hash, time.perf_counter() - started)


def quality_gate(new_macro_f1: float, model_path: Path) -> str | None:
    """Why the new model must not replace the current one, or None when it may."""
    from classifier.persistence import ModelLoadError, read_manifest

    if not Path(model_path).exists():
        return None
    try:
        current = read_manifest(model_path).get("metrics", {}).get("macro_f1")
    except ModelLoadError:
        return None  # an unreadable current model is no reason to keep it
    if current is not None and new_macro_f1 < current - GATE_TOLERANCE:
        return (f"macro-F1 would drop from {current:.3f} to {new_macro_f1:.3f} (more than {GATE_TOLERANCE}); "
                "the current model is kept. Use --force to replace it anyway")
    return None


def train_and_save(
    model_path: Path = DEFAULT_MODEL_PATH,
    *,
    data: Sequence[Path] | None = None,
    extra: Sequence[Path] = (),
    force: bool = False,
    report_dir: Path | None = None,
    log: Callable = print,
) -> TrainingResult:
    """Load the corpus, train, write the reports; save the model unless the quality gate refuses."""
    from classifier.persistence import save_model

    problems: list[Problem] = []
    posts = load_corpus([*(data or [BUNDLED_DATA_DIR]), *extra], problems)
    for problem in problems:
        log(f"skipped {problem}")
    result = train(posts, log=log)
    result.problems = problems
    report_dir = Path(report_dir) if report_dir else Path(model_path).parent / "reports"
    written = write_reports(result.metrics, report_dir, "training", "Cross-validation on the training corpus")
    log(to_markdown(result.metrics, "Cross-validation on the training corpus"))
    log(f"Reports: {', '.join(map(str, written))}")
    refusal = None if force else quality_gate(result.metrics["macro_f1"], model_path)
    if refusal:
        raise GateRefused(refusal, result)
    save_model(result.model, model_path, {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_data_sha256": result.data_hash,
        "training_posts": result.posts,
        "training_seconds": round(result.seconds, 1),
        "metrics": {k: result.metrics[k] for k in ("macro_f1", "accuracy", "per_label", "hard_benign", "evaluation")},
        "per_language_macro_f1": {k: v["macro_f1"] for k, v in result.metrics["per_language"].items()},
    })
    log(f"Saved model {result.model.version} to {model_path} ({result.seconds:.1f} s)")
    return result


class GateRefused(Exception):
    """The quality gate kept the current model."""

    def __init__(self, message: str, result: TrainingResult):
        super().__init__(message)
        self.result = result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifier.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="corpus directory or JSONL file (default: the bundled training_data/)")
    parser.add_argument("--extra", type=Path, action="append", default=[], help="more labelled posts (JSONL with text and label)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help=f"where to save the model (default {DEFAULT_MODEL_PATH})")
    parser.add_argument("--report-dir", type=Path, help="where to write training.{json,md,png} (default: beside the model, in reports/)")
    parser.add_argument("--force", action="store_true", help="replace the current model even if macro-F1 drops")
    args = parser.parse_args(argv)
    try:
        result = train_and_save(args.model, data=args.data, extra=args.extra, force=args.force, report_dir=args.report_dir)
    except GateRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
