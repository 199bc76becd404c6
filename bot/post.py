"""A post, the core type of the bot side: where it was posted, and the text that is scanned.

Every source (a live update, a Telegram Desktop export, a JSONL file) turns what it reads into a
:class:`Post` whose ``text`` is built by :func:`scan_text`: the visible text first, then the text read from
its images (marked :data:`IMAGE_MARK`), then what the reader can reach but not read (URLs behind text links, URL buttons, the chat it was forwarded from), one per
line, capped at the classifier's :data:`classifier.MAX_CHARS`. The same post from two sources is then the
same text, so it is stored once.

What a source reads from a file is checked here before it becomes a :class:`Post`
(:func:`chat_id_problem`, :func:`message_id_problem`, :func:`post_date`): an id or a date that the database,
Telegram's links or the exports cannot hold is refused by name where it enters, not found by the writer later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from bot.actors import Actors
from classifier import MAX_CHARS, safe_text


@dataclass(frozen=True)
class Post:
    """One post as the bot saw it, ready to store."""

    chat_id: int
    message_id: int
    text: str
    date: float | None = None
    chat_type: str | None = None
    chat_title: str | None = None
    chat_username: str | None = None
    # Who made the post (bot/actors.py); None where the source does not say.
    actors: Actors | None = None
    # Part of `text` was read from an image (OCR, bot/image_text.py): the posts table records it.
    from_image: bool = False


# Text read from an image joins the scanned text as one line per image, after this mark, so that a moderator (an
# alert, /check, an export) can tell what the post showed in a picture from what it wrote. An emoji, which the
# classifier's normalisation drops: the mark is for people, not the model. A word mark ("[image] ") cost 6 of 60
# detections in benchmarks/ocr_benchmark.py: the corpus's placeholders ("[sticker: …]") are benign chat.
IMAGE_MARK = "🖼 "


def image_line(lines: Iterable[str]) -> str | None:
    """The text lines read from one image as one scanned line, marked; None when the image held no text."""
    joined = " ".join(" ".join(line.split()) for line in lines if line.strip())
    return IMAGE_MARK + joined if joined else None


def image_lines(text: str | None) -> list[str]:
    """The texts read from images in a scanned text, without their mark."""
    return [line[len(IMAGE_MARK) :] for line in (text or "").splitlines() if line.startswith(IMAGE_MARK)]


def scan_text(visible: str | None, hidden: Iterable[str] = (), images: Iterable[Iterable[str]] = ()) -> str | None:
    """The visible text, then the text of each image (``images``: the lines read from each, one marked line per
    image, :func:`image_line`), then each hidden part not already in it, one per line, capped at MAX_CHARS; None
    when there is nothing to read (a sticker, a photo without caption or legible text)."""
    # A lone UTF-16 surrogate (a hostile or broken update) cannot be hashed, stored or sent: U+FFFD instead.
    visible = safe_text(visible or "")
    lines = [visible] if visible.strip() else []
    lines.extend(safe_text(line) for line in map(image_line, images) if line)
    lines.extend(safe_text(part) for part in hidden if part and part not in visible)
    if not lines:
        return None
    return "\n".join(lines)[:MAX_CHARS]


# Bot API chat ids ("dialog ids") range from -4,000,000,000,000 to 1,099,511,627,775 (users up to 2^40 - 1, basic
# groups negative, channels and supergroups -100…): https://core.telegram.org/api/bots/ids. 0 is no chat.
MIN_CHAT_ID, MAX_CHAT_ID = -4_000_000_000_000, 1_099_511_627_775
# Message ids are 32-bit in MTProto and positive in the Bot API (0 is a message not sent yet).
MIN_MESSAGE_ID, MAX_MESSAGE_ID = 1, 2**31 - 1
# Dates the rest of the bot can show: Python's datetime and SQLite's date functions end with the year 9999, and a
# Telegram date is a Unix time, never before 1970.
MIN_DATE, MAX_DATE = 0.0, 253_402_300_799.0  # 1970-01-01T00:00:00 to 9999-12-31T23:59:59 UTC


def shown(value) -> str:
    """A value as a problem message quotes it: short, whatever it is."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"a {value.bit_length()}-bit number"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def chat_id_problem(chat_id: int) -> str | None:
    """Why an integer cannot be a Bot API chat id, or None when it can."""
    if MIN_CHAT_ID <= chat_id <= MAX_CHAT_ID and chat_id != 0:
        return None
    return f"{shown(chat_id)} is outside Telegram's chat ids ({MIN_CHAT_ID} to {MAX_CHAT_ID})"


def message_id_problem(message_id: int) -> str | None:
    """Why an integer cannot be a Telegram message id, or None when it can."""
    if MIN_MESSAGE_ID <= message_id <= MAX_MESSAGE_ID:
        return None
    return f"{shown(message_id)} is outside Telegram's message ids ({MIN_MESSAGE_ID} to {MAX_MESSAGE_ID})"


def post_date(value, field: str) -> float | None:
    """A post's date in Unix seconds, from a Unix time (a number or a numeric string) or an ISO 8601 time (without
    a zone: UTC); None when there is none. Raises ValueError, naming ``field``, for a date that is there but
    unusable: not a time at all, or outside MIN_DATE to MAX_DATE (infinite, NaN, the year 10000, before 1970)."""
    if value is None:
        return None
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            seconds = math.inf if value > 0 else -math.inf
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                pass
            else:
                seconds = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    if seconds is None:
        raise ValueError(f'"{field}" {shown(value)} is not a Unix time or an ISO 8601 time')
    if not MIN_DATE <= seconds <= MAX_DATE:  # NaN compares false too
        raise ValueError(
            f'"{field}" {shown(value)} is outside the dates that can be stored (1970-01-01 to 9999-12-31 UTC)'
        )
    return seconds
