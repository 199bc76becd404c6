"""Long posts are read passage by passage as well as whole.

The model scores a post as one bag of n-grams, so in a long post the ordinary paragraphs outvote a
promotional one: set between two benign posts of the corpus, a promotion post the model catches 95% of
the time alone was caught 58% of the time (README, "Long posts"). A post long enough
(:data:`PASSAGES_FROM`) is therefore also cut into passages at its paragraphs (then lines, then
sentences), each scored like a post of its own. A passage counts at a discount (:data:`DISCOUNT`): the
post's probability of a promotion label is the larger of the whole post's and the passage's divided by
the discount, so a passage flags the post only when it is promotion with confidence (0.80 or more where
the label's threshold is 0.40). Without the discount a long benign post would be flagged whenever any of
its passages was: with five passages, five chances of a false positive instead of one.

Chosen by leaving each corpus file out (session 11): the long files' promotion was caught 0.913 → 0.989,
their benign posts flagged 2.7% → 4.1%, the other files unchanged (3 of 20,791 verdicts moved); a start
at 250 units or a discount of 1.75 moved 11 and 20 of those other verdicts, more of them wrong than right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from classifier.labels import BENIGN, PROMOTION_LABELS

PASSAGES_FROM = 400  # length units (a Chinese character counts two): shorter posts are read whole only
PASSAGE_LENGTH = 100  # a passage gathers paragraphs, lines or sentences until it is this long
MAX_PASSAGES = 8  # longer posts get longer passages rather than more of them
DISCOUNT = 2.0
# A post whose every promotion label reads below this whole is not read by passage: a promotional passage
# lifts its post's probability well above that (held out by file, session 12: at 0.01 the passages of 29% of
# the long posts are read instead of 54%, and 1 composite in 100 fewer is caught, 0.604 → 0.594).
READ_FROM = 0.01

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCES = re.compile(r"(?<=[.!?。！？])\s*")


def length(text: str) -> int:
    """Characters, a Chinese one counting two: a Chinese post says as much in about half the characters."""
    return len(text) + len(_CJK.findall(text))


def _pieces(text: str, target: float) -> list[str]:
    """The text's paragraphs; one longer than twice ``target`` in its lines, a line that long in sentences."""
    pieces = []
    for paragraph in _PARAGRAPHS.split(text):
        if length(paragraph) <= 2 * target:
            pieces.append(paragraph)
            continue
        for line in paragraph.split("\n"):
            pieces.extend(_SENTENCES.split(line) if length(line) > 2 * target else [line])
    return [piece.strip() for piece in pieces if piece.strip()]


def split(text: str) -> tuple[str, ...]:
    """The passages of a long post, in order; none for a post shorter than :data:`PASSAGES_FROM` or one
    that does not divide."""
    if 2 * len(text) < PASSAGES_FROM:  # cheap: most posts are short, and no character counts more than two
        return ()
    total = length(text)
    if total < PASSAGES_FROM:
        return ()
    target = max(PASSAGE_LENGTH, total / MAX_PASSAGES)
    passages: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _pieces(text, target):
        current.append(piece)
        size += length(piece)
        if size >= target:
            passages.append("\n".join(current))
            current, size = [], 0
    if current:
        # A short tail (a sign-off, a hashtag line) joins the passage before it rather than standing alone.
        if passages and size < target / 2:
            passages[-1] += "\n" + "\n".join(current)
        else:
            passages.append("\n".join(current))
    return tuple(passages) if len(passages) > 1 else ()


def _promotion_columns(classes: Sequence[str]) -> list[int]:
    return [list(classes).index(label) for label in PROMOTION_LABELS if label in classes]


def to_read(counts: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """The posts (rows) whose passages are worth reading: those that have passages (``counts``) and
    whose most likely promotion label, read whole, is at least :data:`READ_FROM` and below ``1 / DISCOUNT``.
    Above that no passage can raise the label, and a post that reads as promotion that clearly needs no
    passage to flag it; below :data:`READ_FROM` the post holds hardly anything of promotion to find."""
    best = probabilities[:, _promotion_columns(classes)].max(axis=1)
    return np.flatnonzero((counts > 0) & (best >= READ_FROM) & (best < 1.0 / DISCOUNT))


def combine(
    probabilities: np.ndarray, classes: Sequence[str], passage_probabilities: np.ndarray, owner: np.ndarray
) -> np.ndarray:
    """The posts' probabilities with each promotion label raised to its best passage's, discounted.

    Thresholds apply to the promotion columns; the benign one of a post a passage raised becomes what the
    promotion labels leave of 1 (0 if nothing), so each row still sums to at most 1."""
    combined = probabilities.copy()
    columns = _promotion_columns(classes)
    for column in columns:
        best = np.zeros(len(probabilities))
        np.maximum.at(best, owner, passage_probabilities[:, column] / DISCOUNT)
        combined[:, column] = np.maximum(combined[:, column], best)
    if BENIGN in classes:
        raised = (combined[:, columns] > probabilities[:, columns]).any(axis=1)
        combined[raised, list(classes).index(BENIGN)] = np.clip(
            1.0 - combined[raised][:, columns].sum(axis=1), 0.0, 1.0
        )
    return combined


def deciding(
    probabilities: np.ndarray, passage_probabilities: np.ndarray, owner: np.ndarray, label_indices: np.ndarray
) -> np.ndarray:
    """Per post, the passage (its row in ``passage_probabilities``) whose discounted probability of the
    post's label is the highest and beats the whole post's own, or -1: the passage that made the verdict."""
    chosen = np.full(len(probabilities), -1)
    if not len(owner):
        return chosen
    discounted = passage_probabilities[np.arange(len(owner)), label_indices[owner]] / DISCOUNT
    order = np.lexsort((discounted, owner))  # by post, then rising: the last of each post is its best
    last = np.r_[owner[order][1:] != owner[order][:-1], True]
    rows = order[last]
    beats = discounted[rows] > probabilities[owner[rows], label_indices[owner[rows]]]
    chosen[owner[rows[beats]]] = rows[beats]
    return chosen
