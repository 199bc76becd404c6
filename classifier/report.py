"""Evaluation figures (per label, per language, false positives on crypto news) as JSON, Markdown, PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sklearn.metrics import classification_report, confusion_matrix, f1_score

from classifier.labels import BENIGN, LABELS


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Macro-F1 over the labels present in ``y_true``, to four places: the real Chinese posts hold no
    `ico`, so a label missing from the truth must not count as a zero."""
    present = [label for label in LABELS if label in set(y_true)]
    return round(float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), 4)


def _block(y_true: Sequence[str], y_pred: Sequence[str]) -> dict:
    present = [label for label in LABELS if label in set(y_true)]
    report = classification_report(y_true, y_pred, labels=present, output_dict=True, zero_division=0)
    return {
        "posts": len(y_true),
        "labels": present,
        "per_label": {
            label: {k: round(report[label][k], 4) for k in ("precision", "recall", "f1-score", "support")}
            for label in present
        },
        "macro_f1": macro_f1(y_true, y_pred),
        "accuracy": round(sum(t == p for t, p in zip(y_true, y_pred)) / max(len(y_true), 1), 4),
    }


def compute_metrics(y_true: Sequence[str], y_pred: Sequence[str], langs: Sequence[str], hard: Sequence[bool]) -> dict:
    """All the figures of one evaluation."""
    metrics = _block(y_true, y_pred)
    metrics["confusion_matrix"] = {
        "labels": list(LABELS),
        "matrix": confusion_matrix(y_true, y_pred, labels=list(LABELS)).tolist(),
    }
    metrics["per_language"] = {
        lang: _block([t for t, l in zip(y_true, langs) if l == lang], [p for p, l in zip(y_pred, langs) if l == lang])
        for lang in sorted(set(langs))
    }
    hard_preds = [p for p, h, t in zip(y_pred, hard, y_true) if h and t == BENIGN]
    metrics["hard_benign"] = {
        "posts": len(hard_preds),
        "false_positives": sum(p != BENIGN for p in hard_preds),
        "false_positive_rate": round(sum(p != BENIGN for p in hard_preds) / len(hard_preds), 4) if hard_preds else None,
    }
    return metrics


def to_markdown(metrics: dict, title: str) -> str:
    lines = [
        f"## {title}",
        "",
        f"{metrics['posts']} posts, macro-F1 **{metrics['macro_f1']:.3f}**, accuracy {metrics['accuracy']:.3f}",
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for label, row in metrics["per_label"].items():
        lines.append(
            f"| `{label}` | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1-score']:.3f} | {int(row['support'])} |"
        )
    if len(metrics.get("per_language", {})) > 1:
        lines += [
            "",
            "| language | posts | macro-F1 (labels present) | " + " | ".join(f"F1 `{l}`" for l in LABELS) + " |",
            "|---|---|---|" + "---|" * len(LABELS),
        ]
        for lang, block in metrics["per_language"].items():
            f1s = [f"{block['per_label'][l]['f1-score']:.3f}" if l in block["per_label"] else "–" for l in LABELS]
            lines.append(f"| {lang} | {block['posts']} | {block['macro_f1']:.3f} | " + " | ".join(f1s) + " |")
    hard = metrics.get("hard_benign", {})
    if hard.get("posts"):
        lines += [
            "",
            f"False positives on crypto-related benign posts (`hard`): {hard['false_positives']} of "
            f"{hard['posts']} = **{hard['false_positive_rate']:.1%}**",
        ]
    if "thresholds" in metrics:
        values = ", ".join(f"`{label}` {value:.2f}" for label, value in metrics["thresholds"]["values"].items())
        lines += ["", f"Thresholds: {values} (tuned on {metrics['thresholds']['tuned_on']})"]
    cm = metrics["confusion_matrix"]
    lines += [
        "",
        "Confusion matrix (rows: true label, columns: predicted):",
        "",
        "| | " + " | ".join(f"`{l}`" for l in cm["labels"]) + " |",
        "|---|" + "---|" * len(cm["labels"]),
    ]
    for label, row in zip(cm["labels"], cm["matrix"]):
        lines.append(f"| `{label}` | " + " | ".join(str(v) for v in row) + " |")
    for result in metrics.get("leave_one_out", {}).values():
        lines += ["", leave_one_out_markdown(result).rstrip("\n")]
    return "\n".join(lines) + "\n"


def leave_one_out_markdown(result: dict) -> str:
    """The figures of one ``classifier.generalisation.leave_one_out`` as a Markdown section."""
    by = result["by"]
    caught = result.get("promotion_caught")
    lines = [
        f"### Leave-one-{by}-out ({result['family']})",
        "",
        f"{result['posts']} posts, each predicted by a model trained without its {by}: macro-F1 "
        f"**{result['macro_f1']:.3f}**; recall "
        + ", ".join(f"`{k}` {v:.3f}" for k, v in result["recall"].items())
        + (f"; promotion flagged with either label {caught:.3f}" if caught is not None else ""),
        "",
        f"| {by} | posts | macro-F1 | " + " | ".join(f"recall `{l}`" for l in LABELS) + " | promotion caught |",
        "|---|---|---|" + "---|" * (len(LABELS) + 1),
    ]
    for group, figures in result["groups"].items():
        recalls = [f"{figures['recall'][l]:.3f}" if l in figures["recall"] else "–" for l in LABELS]
        macro = f"{figures['macro_f1']:.3f}" if "macro_f1" in figures else "–"
        caught = f"{figures['promotion_caught']:.3f}" if "promotion_caught" in figures else "–"
        lines.append(f"| `{group}` | {figures['posts']} | {macro} | " + " | ".join(recalls) + f" | {caught} |")
    return "\n".join(lines) + "\n"


def write_reports(metrics: dict, directory: Path, stem: str, title: str) -> list[Path]:
    """``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` (the confusion matrix) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = (directory / f"{stem}{ext}" for ext in (".json", ".md", ".png"))
    json_path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    md_path.write_text(to_markdown(metrics, title), encoding="utf-8")
    plot_confusion_matrix(metrics, png_path, title)
    return [json_path, md_path, png_path]


def plot_confusion_matrix(metrics: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = metrics["confusion_matrix"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ConfusionMatrixDisplay(np.array(cm["matrix"]), display_labels=cm["labels"]).plot(
        ax=ax, cmap="Blues", colorbar=False
    )
    ax.set_title(f"{title}\nmacro-F1 {metrics['macro_f1']:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
