"""Reading labelled posts from JSONL files, with a clear message for every line that cannot be used."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from classifier.labels import BENIGN, LABELS
from classifier.normalize import safe_text

BUNDLED_DATA_DIR = Path(__file__).resolve().parent.parent / "training_data"
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class LabelledPost:
    text: str
    label: str
    lang: str
    hard: bool = False
    source: str = ""


@dataclass(frozen=True)
class Problem:
    """A line that was skipped, and why."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


def guess_language(text: str) -> str:
    """``zh`` when a noticeable share of the letters are Han characters, else ``en``."""
    han = len(_HAN.findall(text))
    letters = sum(ch.isalpha() for ch in text) or 1
    return "zh" if han >= 2 and han / letters > 0.2 else "en"


def parse_line(raw: str, *, require_label: bool) -> dict:
    """One JSONL line as a dict with a usable ``text``; raises ValueError with a readable reason."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    text = obj.get("text")
    if not isinstance(text, str):
        raise ValueError('missing "text" (a string)')
    if not text.strip():
        raise ValueError('"text" is empty')
    obj["text"] = safe_text(text)
    if require_label:
        label = obj.get("label")
        if label not in LABELS:
            raise ValueError(f'"label" must be one of {", ".join(LABELS)}, got {label!r}')
    return obj


def read_labelled(path: Path, problems: list[Problem]) -> Iterator[LabelledPost]:
    """Labelled posts of one JSONL file; bad lines are recorded in ``problems`` and skipped."""
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                obj = parse_line(raw, require_label=True)
            except ValueError as exc:
                problems.append(Problem(str(path), number, str(exc)))
                continue
            lang = obj.get("lang") if obj.get("lang") in ("en", "zh") else guess_language(obj["text"])
            yield LabelledPost(
                text=obj["text"],
                label=obj["label"],
                lang=lang,
                hard=bool(obj.get("hard")) and obj["label"] == BENIGN,
                source=str(obj.get("source", path.stem)),
            )


def corpus_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.jsonl") if p.is_file())


def load_corpus(paths: Iterable[Path], problems: list[Problem] | None = None) -> list[LabelledPost]:
    """Posts from files and directories of ``*.jsonl``; duplicate texts keep the last label seen."""
    problems = [] if problems is None else problems
    by_text: dict[str, LabelledPost] = {}
    for path in paths:
        path = Path(path)
        files = corpus_files(path) if path.is_dir() else [path]
        if not files:
            problems.append(Problem(str(path), 0, "no .jsonl files found"))
        for file in files:
            if not file.exists():
                problems.append(Problem(str(file), 0, "file not found"))
                continue
            for post in read_labelled(file, problems):
                by_text.pop(post.text, None)
                by_text[post.text] = post
    return list(by_text.values())


def corpus_hash(posts: Iterable[LabelledPost]) -> str:
    digest = hashlib.sha256()
    for post in sorted(posts, key=lambda p: (p.text, p.label)):
        digest.update(post.text.encode("utf-8", "replace") + b"\x00" + post.label.encode() + b"\n")
    return digest.hexdigest()


def counts_table(posts: Iterable[LabelledPost]) -> str:
    """Markdown table of posts per label and language (and hard negatives), as training_data/README.md shows."""
    posts = list(posts)
    rows = ["| label | en | zh | total |", "|---|---|---|---|"]
    for label in LABELS:
        en = sum(p.label == label and p.lang == "en" for p in posts)
        zh = sum(p.label == label and p.lang == "zh" for p in posts)
        rows.append(f"| `{label}` | {en} | {zh} | {en + zh} |")
    en = sum(p.lang == "en" for p in posts)
    rows.append(f"| all | {en} | {len(posts) - en} | {len(posts)} |")
    hard = sum(p.hard for p in posts)
    rows.append(f"| of which `benign` hard negatives | {sum(p.hard and p.lang == 'en' for p in posts)} | "
                f"{sum(p.hard and p.lang == 'zh' for p in posts)} | {hard} |")
    return "\n".join(rows)


README_MARKERS = ("<!-- counts: python -m classifier.corpus --update-readme -->", "<!-- /counts -->")


def readme_with_counts(readme: str, table: str) -> str:
    """The corpus README with the table between its markers replaced by ``table``."""
    start, end = README_MARKERS
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m classifier.corpus", description="Counts of the bundled corpus.")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the table in training_data/README.md")
    args = parser.parse_args(argv)
    problems: list[Problem] = []
    table = counts_table(load_corpus([BUNDLED_DATA_DIR], problems))
    for problem in problems:
        print(f"skipped {problem}")
    if args.update_readme:
        readme = BUNDLED_DATA_DIR / "README.md"
        readme.write_text(readme_with_counts(readme.read_text(encoding="utf-8"), table), encoding="utf-8")
    print(table)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
