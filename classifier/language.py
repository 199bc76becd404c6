"""Which language a post is written in, and whether the model was trained on it.

The corpus is English and Chinese. A post in another language (Russian, Persian, Spanish…) gets a label
all the same, but from n-grams the model never learned for that language, so its confidence means little:
a Russian video re-upload post once scored ``ico`` at 0.83. The verdict names such a language as not
covered, and the bot sends those posts to the digest instead of alerting at once.

Detection is Google's CLD2 (``pycld2``, tables compiled into the wheel, no download, ~20 µs a post).
Short or mixed posts are left as covered: CLD2 guesses badly on a dozen letters, and most short posts of
the corpus are terse English or Chinese.
"""

from __future__ import annotations

import re

import pycld2

from classifier.labels import LANGUAGES

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")  # Japanese writes Han characters too; kana tell it apart
# Everything that is not a letter: the letters are what removing it leaves, counted without the list of
# one-letter strings that findall of the letters would build (twice as slow on long posts).
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_ASCII_NOT_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())
# CLD2 calls Chinese "zh" or "zh-Hant"; "un" is its "unknown".
_COVERED_CODES = {"en", "zh", "zh-Hant", "un"}
MIN_LETTERS = 40  # fewer letters than this: too short to tell a language reliably
MIN_PERCENT = 70  # the share of the text CLD2 gives to its first language


def detect_language(cleaned: str) -> str:
    """``en`` or ``zh`` for the languages the model covers (and for posts too short to tell), otherwise
    CLD2's code for the language (``ru``, ``fa``, ``es``…). ``cleaned`` is :func:`classifier.normalize.clean`'s
    output (look-alike letters already folded, so "Вinаnce" does not read as Russian)."""
    if cleaned.isascii():  # no Han, and the letters counted in C: three posts in ten
        letters = len(cleaned.encode("ascii").translate(None, _ASCII_NOT_LETTERS))
    else:
        han = len(_HAN.findall(cleaned))
        chinese_script = han >= 2 and len(_KANA.findall(cleaned)) < 2
        # More than a fifth of all characters Han means more than a fifth of the letters: most Chinese posts
        # are told without counting the letters, the dearer count.
        if chinese_script and han > 0.2 * len(cleaned):
            return "zh"
        letters = len(_NOT_LETTERS.sub("", cleaned))
        if chinese_script and han / max(letters, 1) > 0.2:
            return "zh"
    if letters < MIN_LETTERS:
        return "en"
    try:
        reliable, _, details = pycld2.detect(cleaned)
    except pycld2.error:  # invalid UTF-8 inside; the text is still scanned as English would be
        return "en"
    code, percent = details[0][1], details[0][2]
    if not reliable or code in _COVERED_CODES or percent < MIN_PERCENT:
        return "en"
    return code


def is_covered(language: str) -> bool:
    """Whether the model was trained on posts in ``language``."""
    return language in LANGUAGES
