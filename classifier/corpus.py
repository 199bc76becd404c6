"""Reading labelled posts from JSONL files, with a clear message for every line that cannot be used."""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from classifier.genres import (
    CHINESE_REGISTERS_IN_THE_WILD,
    ENGLISH_REGISTERS_IN_THE_WILD,
    GENRES,
    MIN_ENGLISH_PER_CELL,
    REGISTERS,
    label_of_genre,
)
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
    genre: str = ""  # one of classifier.genres.GENRES; empty for posts from reviews and plain files
    register: str = ""  # one of classifier.genres.REGISTERS, likewise


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


# A post is a flat object; its other fields may nest a little. Deeper is not a post: json.loads itself gives up
# near a thousand levels (RecursionError, sooner on a deeper stack), and what it did read could not always be
# written back out.
MAX_DEPTH = 64


def parse_post_line(raw: str, *, require_label: bool) -> dict:
    """One JSONL line as a dict with a usable ``text``; raises ValueError with a readable reason."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels: not a post") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise ValueError(f"not valid JSON (a number of more than {sys.get_int_max_str_digits()} digits)") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if _deeper_than(obj, MAX_DEPTH):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels: not a post")
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
        check_genre_and_register(obj)
    return obj


def _deeper_than(value, limit: int) -> bool:
    """Whether a JSON value nests more than ``limit`` objects and arrays deep; level by level, without recursion."""
    level, containers = 1, [value]
    while containers:
        if level > limit:
            return True
        containers = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
        level += 1
    return False


def check_genre_and_register(obj: dict) -> None:
    """``genre`` and ``register`` are optional, but when given they must be known names, and the genre
    must belong to the post's label; raises ValueError saying which."""
    genre, register = obj.get("genre"), obj.get("register")
    if genre is not None:
        if genre not in GENRES:
            raise ValueError(f'unknown "genre" {genre!r} (one of {", ".join(GENRES)})')
        if label_of_genre(genre) != obj["label"]:
            raise ValueError(f'"genre" {genre!r} belongs to label {label_of_genre(genre)!r}, not {obj["label"]!r}')
    if register is not None and register not in REGISTERS:
        raise ValueError(f'unknown "register" {register!r} (one of {", ".join(REGISTERS)})')


def read_labelled(path: Path, problems: list[Problem]) -> Iterator[LabelledPost]:
    """Labelled posts of one JSONL file; bad lines are recorded in ``problems`` and skipped."""
    # utf-8-sig: a byte-order mark (some Windows editors write one) is not part of the first line.
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                obj = parse_post_line(raw, require_label=True)
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
                genre=obj.get("genre") or "",
                register=obj.get("register") or "",
            )


def corpus_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.jsonl") if p.is_file())


# The corpus's writers invented their domains under the reserved suffix .example; real promoters use .com,
# .io, .xyz … Read as written, "example" became a cue of promotion that no real post carries (490 posts,
# 96% of them promotion). The corpus is read with each such suffix replaced by a common real one, chosen from
# the post's own text so that every run, and every tool that reads the corpus, sees the same posts.
_EXAMPLE_SUFFIX = re.compile(r"\.example\b", re.IGNORECASE)
REAL_SUFFIXES = ("com", "io", "xyz", "net", "app", "org", "vip", "top", "cc", "finance", "pro", "co")


def with_real_suffixes(text: str) -> str:
    """``text`` with every ``.example`` suffix replaced by one of :data:`REAL_SUFFIXES`, deterministically."""
    if ".example" not in text.lower():
        return text
    seed = int(hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:8], 16)
    picks = iter(range(seed, seed + len(text)))
    return _EXAMPLE_SUFFIX.sub(lambda _: "." + REAL_SUFFIXES[next(picks) % len(REAL_SUFFIXES)], text)


def load_corpus(paths: Iterable[Path], problems: list[Problem] | None = None) -> list[LabelledPost]:
    """Posts from files and directories of ``*.jsonl``; duplicate texts keep the last label seen. Invented
    ``.example`` domains are read under real suffixes (:func:`with_real_suffixes`)."""
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
                post = replace(post, text=with_real_suffixes(post.text))
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
    rows.append(
        f"| of which `benign` hard negatives | {sum(p.hard and p.lang == 'en' for p in posts)} | "
        f"{sum(p.hard and p.lang == 'zh' for p in posts)} | {hard} |"
    )
    return "\n".join(rows)


def coverage_table(posts: Iterable[LabelledPost]) -> str:
    """Markdown matrix: a row per genre, a column per register, each cell ``en / zh`` posts. A cell marked
    ``!`` holds fewer English posts than a promotion genre needs where it is written in the wild."""
    cells: dict[tuple[str, str, str], int] = {}
    for post in posts:
        key = (post.genre, post.register, post.lang)
        cells[key] = cells.get(key, 0) + 1
    rows = [
        "| label | genre | " + " | ".join(REGISTERS.values()) + " | total |",
        "|---|---|" + "---|" * (len(REGISTERS) + 1),
    ]
    for genre, (label, _) in GENRES.items():
        row, total = [], 0
        for register in REGISTERS:
            en, zh = cells.get((genre, register, "en"), 0), cells.get((genre, register, "zh"), 0)
            total += en + zh
            short = register in ENGLISH_REGISTERS_IN_THE_WILD.get(genre, ()) and en < MIN_ENGLISH_PER_CELL
            row.append(f"{en}{'!' if short else ''} / {zh}")
        rows.append(f"| `{label}` | `{genre}` | " + " | ".join(row) + f" | {total} |")
    return "\n".join(rows)


def coverage_gaps(posts: Iterable[LabelledPost]) -> list[str]:
    """What the corpus lacks against its coverage rule, one line each (empty when it holds):
    every post has a genre and a register; every promotion genre has ``MIN_ENGLISH_PER_CELL`` English
    posts in each register where it is written in the wild, and Chinese posts in the Chinese registers."""
    posts = list(posts)
    untagged = sum(not (p.genre and p.register) for p in posts)
    gaps = [f"{untagged} posts have no genre or register"] if untagged else []
    cells: dict[tuple[str, str, str], int] = {}
    for post in posts:
        cells[(post.genre, post.register, post.lang)] = cells.get((post.genre, post.register, post.lang), 0) + 1
    for genre, registers in ENGLISH_REGISTERS_IN_THE_WILD.items():
        for register in registers:
            if (en := cells.get((genre, register, "en"), 0)) < MIN_ENGLISH_PER_CELL:
                gaps.append(f"{genre} / {register}: {en} English posts, need {MIN_ENGLISH_PER_CELL}")
        for register in CHINESE_REGISTERS_IN_THE_WILD:
            if not cells.get((genre, register, "zh"), 0):
                gaps.append(f"{genre} / {register}: no Chinese post")
    return gaps


def char_grams(text: str, n: int = 5) -> frozenset[str]:
    """Character n-grams of a text with case and runs of white space folded (the whole text if shorter)."""
    text = " ".join(text.casefold().split())
    return frozenset(text[i : i + n] for i in range(max(1, len(text) - n + 1)))


def near_duplicates(texts: Sequence[str], threshold: float = 0.8, n: int = 5) -> dict[int, int]:
    """For each text that has one, the index of a neighbour whose character-n-gram Jaccard similarity
    is at least ``threshold``. Exact: prefix filtering (two sets that similar must share one of the rarest
    grams of each) finds the candidates, then every candidate's similarity is computed."""
    sets = [char_grams(t, n) for t in texts]
    frequency: dict[str, int] = {}
    for grams in sets:
        for gram in grams:
            frequency[gram] = frequency.get(gram, 0) + 1
    index: dict[str, list[int]] = {}
    found: dict[int, int] = {}
    for i in sorted(range(len(sets)), key=lambda k: len(sets[k])):
        grams = sets[i]
        ordered = sorted(grams, key=lambda g: (frequency[g], g))
        prefix = ordered[: len(grams) - math.ceil(threshold * len(grams)) + 1]
        seen: set[int] = set()
        for gram in prefix:
            for j in index.get(gram, ()):
                if j in seen:
                    continue
                seen.add(j)
                other = sets[j]
                if len(other) < threshold * len(grams):  # too small to reach the threshold
                    continue
                shared = len(grams & other)
                if shared / (len(grams) + len(other) - shared) >= threshold:
                    found.setdefault(i, j)
                    found.setdefault(j, i)
            index.setdefault(gram, []).append(i)
    return found


README_MARKERS = ("<!-- counts: python -m classifier.corpus --update-readme -->", "<!-- /counts -->")
COVERAGE_MARKERS = ("<!-- coverage: python -m classifier.corpus --update-readme -->", "<!-- /coverage -->")


def readme_with_counts(readme: str, table: str, markers: tuple[str, str] = README_MARKERS) -> str:
    """The corpus README with the table between ``markers`` replaced by ``table``."""
    start, end = markers
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m classifier.corpus", description="Counts, coverage and near-duplicates of the bundled corpus."
    )
    parser.add_argument(
        "--update-readme", action="store_true", help="rewrite the counts and coverage tables in training_data/README.md"
    )
    args = parser.parse_args(argv)
    problems: list[Problem] = []
    posts = load_corpus([BUNDLED_DATA_DIR], problems)
    table, coverage = counts_table(posts), coverage_table(posts)
    for problem in problems:
        print(f"skipped {problem}")
    if args.update_readme:
        readme = BUNDLED_DATA_DIR / "README.md"
        text = readme_with_counts(readme.read_text(encoding="utf-8"), table)
        readme.write_text(readme_with_counts(text, coverage, COVERAGE_MARKERS), encoding="utf-8")
    print(table, coverage, sep="\n\n")
    for gap in coverage_gaps(posts):
        print(f"gap: {gap}")
    twins = near_duplicates([p.text for p in posts])
    print(
        f"near-duplicates (character 5-gram Jaccard >= 0.8): {len(twins)} posts, {len(twins) / max(1, len(posts)):.1%}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
