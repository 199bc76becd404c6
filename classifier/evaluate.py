"""Evaluate a trained model on any labelled JSONL file: per label, per language, false positives on
crypto-related benign posts (those marked ``"hard": true``).

    python -m classifier.evaluate FILE.jsonl [--model PATH] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from classifier.corpus import LabelledPost, Problem, read_labelled
from classifier.model import PromotionClassifier
from classifier.persistence import ModelLoadError, load_model
from classifier.report import compute_metrics, to_markdown, write_reports
from classifier.train import DEFAULT_MODEL_PATH


def evaluate(model: PromotionClassifier, posts: Sequence[LabelledPost]) -> dict:
    verdicts = model.predict_many([p.text for p in posts], reasons=0)
    metrics = compute_metrics(
        [p.label for p in posts], [v.label for v in verdicts], [p.lang for p in posts], [p.hard for p in posts]
    )
    metrics["model_version"] = model.version
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifier.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="labelled JSONL: text, label, optional lang and hard")
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL_PATH, help=f"model to evaluate (default {DEFAULT_MODEL_PATH})"
    )
    parser.add_argument("--report-dir", type=Path, help="also write evaluation.{json,md,png} there")
    args = parser.parse_args(argv)
    if not args.file.exists():
        print(
            f"error: {args.file} does not exist"
            + (
                " (the shared evaluation set is only present beside the project checkout)"
                if "shared" in str(args.file)
                else ""
            ),
            file=sys.stderr,
        )
        return 2
    try:
        model = load_model(args.model)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems: list[Problem] = []
    posts = list(read_labelled(args.file, problems))
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not posts:
        print(f"error: no usable labelled posts in {args.file}", file=sys.stderr)
        return 2
    metrics = evaluate(model, posts)
    title = f"{args.file.name} — model {model.version}"
    print(to_markdown(metrics, title))
    if args.report_dir:
        for path in write_reports(metrics, args.report_dir, "evaluation", title):
            print(f"wrote {path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
