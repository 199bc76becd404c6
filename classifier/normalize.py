"""Undo the obfuscation that promoters use to slip past keyword filters.

Two stages. :func:`clean` keeps case and punctuation (addresses and referral codes are case-sensitive)
and only removes what no reader sees or what merely imitates a Latin letter. :func:`normalize` goes on to
the form the n-gram features read: case-folded, emoji gone, spaced-out letters joined again.
"""

from __future__ import annotations

import re
import unicodedata

# Telegram posts stop at 4096 characters (captions at 1024); anything longer is pasted text, and its first
# part says what it is. The cap keeps a 100 KB paste from costing 100 times a post; the bot stores and
# scans the same first MAX_CHARS characters of every post (visible text plus the links it hides).
MAX_CHARS = 8000

# Characters a reader does not see but that split a keyword for a filter. A character class, because
# str.translate walks a non-ASCII text character by character in Python's dict lookups (15 times slower).
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u3164\ufeff\uffa0"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f]"
)

# Cyrillic and Greek letters that look like Latin ones. Applied only inside words that also hold a Latin
# letter, so real Russian or Greek text is left alone while "Вinаnce" becomes "Binance".
_HOMOGLYPHS = str.maketrans(
    "АВЕКМНОРСТХаеорсухіјѕԁԛԝӏІЈЅАΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοριτυνκ",
    "ABEKMHOPCTXaeopcyxijsdqwlIJSAABEZHIKMNOPTYXaopitvvk",
)
_CYRILLIC_GREEK = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")
# A look-alike standing alone, as in the spaced-out "В i n а n с е", when the text also has Latin letters.
_LONE_LOOKALIKE = re.compile(r"(?<!\w)[\u0370-\u03ff\u0400-\u04ff](?!\w)")
_LATIN = re.compile(r"[A-Za-z]")
_MIXED_WORD = re.compile(r"\w*[A-Za-z]\w*[\u0370-\u03ff\u0400-\u04ff]\w*|\w*[\u0370-\u03ff\u0400-\u04ff]\w*[A-Za-z]\w*")

# Emoji, pictographs, dingbats, keycaps, regional indicators and other symbols with no letters in them.
_SYMBOLS = re.compile(
    "[\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff\u3030\u303d"
    "\u3297\u3299\U0001f000-\U0001faff\U0001fc00-\U0001ffff\u20e3\u2122\u2139\u2640\u2642]"
)
# A word cut by emoji into pieces of one or two letters, "Pr🚀es✅al🚀e" (zero-width spaces already gone).
_SYMBOL_SPLIT = re.compile(rf"(?<!\w)(?:[^\W_]{{1,2}}{_SYMBOLS.pattern}+){{2,}}[^\W_]{{1,2}}(?!\w)")
# What _SYMBOL_SPLIT cannot match without: a symbol right after a letter. It tries every letter of a post;
# this skips to the symbols (one post in ten with symbols holds a letter-symbol pair), half the time.
_LETTER_SYMBOL = re.compile(rf"(?={_SYMBOLS.pattern})(?<=[^\W_]){_SYMBOLS.pattern}")
# Letters separated by single spaces, dots, dashes, underscores, stars or middle dots: "B i n a n c e".
_SPACED = re.compile(r"(?<![\w])(?:[^\W_][ .\-_*·•|]{1,2}){2,}[^\W_](?![\w])")
_SPACED_SEPARATORS = re.compile(r"[ .\-_*·•|]")
_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_CJK_GAP = re.compile(rf"(?=[ \t])(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")  # the lookahead first: re skips to blanks
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Cc without tab and newline
# Runs of blanks become one space. A lone space is already one, so it is not matched at all: replacing
# every single space with itself was a third of the folding's time.
# The lookahead lets re skip to the blanks instead of trying both branches at every character (a third faster).
_WHITESPACE = re.compile(r"(?=[ \t\r\f\v])(?:[ \t\r\f\v]{2,}|[\t\r\f\v])")
_SQUEEZABLE = ("  ", "\t", "\r", "\f", "\v")  # what _WHITESPACE needs; substring tests are five times cheaper
_BLANK_LINES = re.compile(r"\n\s*\n+")


def safe_text(text: str) -> str:
    """A string that can be encoded: lone surrogates (from broken JSON or UTF-16) become U+FFFD."""
    if not _has_surrogates(text):
        return text
    # surrogatepass keeps a valid pair together; only a lone half becomes U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def latin_lookalikes(text: str) -> str:
    """Every Cyrillic or Greek letter of the homoglyph table replaced by the Latin one it imitates, wherever
    it stands (the watchlist folds a whole host name this way; :func:`clean` only inside Latin words)."""
    return text.translate(_HOMOGLYPHS)


def strip_invisible(text: str) -> str:
    """The text without the invisible characters that :func:`clean` removes."""
    return _INVISIBLE.sub("", text)


def _fold_mixed_word(match: re.Match) -> str:
    return match.group(0).translate(_HOMOGLYPHS)


def clean(text: str) -> str:
    """NFKC (full-width forms and styled letters to plain), invisible and control characters removed,
    Cyrillic/Greek look-alikes inside Latin words replaced. Case and punctuation are kept."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", safe_text(text)))
    text = _CONTROL.sub(" ", text)
    if _CYRILLIC_GREEK.search(text):
        text = _MIXED_WORD.sub(_fold_mixed_word, text)
        if _LATIN.search(text):
            text = _LONE_LOOKALIKE.sub(_fold_mixed_word, text)
    return text


def _join_spaced(match: re.Match) -> str:
    return _SPACED_SEPARATORS.sub("", match.group(0))


def _join_symbol_split(match: re.Match) -> str:
    return _SYMBOLS.sub("", match.group(0))


def normalize(text: str) -> str:
    """The form the n-gram features read: :func:`clean`, then :func:`fold`."""
    return fold(clean(text))


def fold(cleaned: str) -> str:
    """Case-fold a :func:`clean` text, join a word cut by emoji ("pr🚀es✅al🚀e" → "presale"), replace other
    symbols and emoji by a space, join spaced-out letters ("b i n a n c e" → "binance", "空 投" → "空投") and
    squeeze whitespace."""
    text = cleaned.casefold()
    if _SYMBOLS.search(text):
        if _LETTER_SYMBOL.search(text):
            text = _SYMBOL_SPLIT.sub(_join_symbol_split, text)
        text = _SYMBOLS.sub(" ", text)
    if not text.isascii():  # the gap between two Chinese characters
        text = _CJK_GAP.sub("", text)
    text = _SPACED.sub(_join_spaced, text)
    if any(blank in text for blank in _SQUEEZABLE):
        text = _WHITESPACE.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()
