"""Reading JSONL files of posts for ``compliance-bot scan``: one object a line with Bot API ids.

Every line that cannot be used is reported through ``report`` with its line number, and skipped. What enters is
checked where it enters: the bytes (a byte-order mark, invalid UTF-8), the JSON (too deep, numbers too long),
the chat and message ids (Telegram's ranges) and the date (what the rest of the bot can show), see :mod:`bot.post`.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Callable, Iterator
from typing import IO

from bot.desktop_export import ReadCounts
from bot.post import Post, chat_id_problem, message_id_problem, post_date, scan_text
from classifier import safe_text

# Bytes that are not UTF-8, as the "surrogateescape" decoder gives them.
_INVALID_UTF8 = re.compile("[\udc80-\udcff]+")


def read_jsonl(handle: IO[bytes], name: str, report: Callable[[str], None], counts: ReadCounts) -> Iterator[Post]:
    """Posts of a JSONL file: one object a line with ``text``, ``chat_id`` and ``message_id`` (Bot API ids),
    and optionally ``date`` (epoch seconds or ISO 8601), ``chat_title``, ``chat_username``, ``chat_type``."""
    for number, raw in enumerate(handle, 1):
        where = f"{name}:{number}"
        parsed = parse_line(raw, number == 1, where, report, counts)
        if parsed is None:
            continue
        obj, invalid = parsed
        problem = _jsonl_problem(obj)
        if problem:
            counts.skipped += 1
            report(f"{where}: {problem}; skipped")
            continue
        if invalid:
            counts.skipped += 1  # a problem reported; the line is still read
            report(f"{where}: {invalid}, replaced by U+FFFD; the line is read")
        text = scan_text(obj["text"])
        if text is None:
            counts.no_text += 1
            continue
        try:
            date = post_date(obj.get("date"), "date")
        except ValueError as exc:
            counts.skipped += 1
            report(f"{where}: {exc}; stored with its date unknown")
            date = None
        counts.posts += 1
        yield Post(
            chat_id=obj["chat_id"],
            message_id=obj["message_id"],
            text=text,
            date=date,
            chat_type=_str(obj.get("chat_type")),
            chat_title=_str(obj.get("chat_title")),
            chat_username=_str(obj.get("chat_username")),
        )


def parse_line(
    raw: bytes, first: bool, where: str, report: Callable[[str], None], counts: ReadCounts
) -> tuple[object, str | None] | None:
    """The JSON value of one line and what of it was not UTF-8 (None when all was); None for a blank line
    and for one that is not JSON (counted, and reported at ``where``). ``first``: the file's first line,
    which may start with a byte-order mark."""
    bom = len(codecs.BOM_UTF8) if first and raw.startswith(codecs.BOM_UTF8) else 0
    line, invalid = _decode(raw[bom:], bom)
    line = line.strip()
    if not line:
        return None
    counts.messages += 1
    try:
        return _load(line), invalid
    except ValueError as exc:
        counts.skipped += 1
        report(f"{where}: {exc}; skipped")
        return None


def _decode(raw: bytes, offset: int = 0) -> tuple[str, str | None]:
    """The line as text, and what was not UTF-8 in it (each such byte becomes U+FFFD), if anything."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", "surrogateescape")
    first = _INVALID_UTF8.search(text)
    at = offset + len(text[: first.start()].encode("utf-8", "surrogateescape"))
    bad = first.group().encode("utf-8", "surrogateescape")
    shown = bad[:8].hex(" ").upper() + (" …" if len(bad) > 8 else "")
    return _INVALID_UTF8.sub(
        lambda m: "\ufffd" * len(m.group()), text
    ), f"invalid UTF-8 at byte {at} of the line ({shown})"


def _load(line: str):
    """The line's JSON value; ValueError saying why there is none."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:  # "[[[[…" thousands deep: json.loads gives up
        raise ValueError("JSON nested too deeply to be a post") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise ValueError(f"not valid JSON (a number of more than {sys.get_int_max_str_digits()} digits)") from None


def _jsonl_problem(obj) -> str | None:
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    if not isinstance(obj.get("text"), str):
        return 'missing "text" (a string)'
    for key in ("chat_id", "message_id"):
        if not isinstance(obj.get(key), int) or isinstance(obj.get(key), bool):
            return f'missing "{key}" (an integer): scanned posts are stored by chat and message id'
    for key, problem_of in (("chat_id", chat_id_problem), ("message_id", message_id_problem)):
        if problem := problem_of(obj[key]):
            return f'"{key}" {problem}'
    return None


def _str(value) -> str | None:
    return safe_text(value) if isinstance(value, str) and value else None
