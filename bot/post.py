"""A post, the core type of the bot side: where it was posted, and the text that is scanned.

Every source (a live update, a Telegram Desktop export, a JSONL file) turns what it reads into a
:class:`Post` whose ``text`` is built by :func:`scan_text`: the visible text first, then what the reader
can reach but not read (URLs behind text links, URL buttons, the chat it was forwarded from), one per
line, capped at the classifier's :data:`classifier.MAX_CHARS`. The same post from two sources is then the
same text, so it is stored once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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


def scan_text(visible: str | None, hidden: Iterable[str] = ()) -> str | None:
    """The visible text, then each hidden part not already in it, one per line, capped at MAX_CHARS;
    None when there is nothing to read (a sticker, a photo without caption)."""
    # A lone UTF-16 surrogate (a hostile or broken update) cannot be hashed, stored or sent: U+FFFD instead.
    visible = safe_text(visible or "")
    lines = [visible] if visible.strip() else []
    lines.extend(safe_text(part) for part in hidden if part and part not in visible)
    if not lines:
        return None
    return "\n".join(lines)[:MAX_CHARS]
