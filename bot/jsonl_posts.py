"""Reading JSONL files of posts for ``compliance-bot scan``: one object a line with Bot API ids.

Every line that cannot be used is reported through ``report`` with its line number, and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO

from bot.desktop_export import ReadCounts, message_date
from bot.post import Post, scan_text


def read_jsonl(handle: IO[bytes], name: str, report: Callable[[str], None], counts: ReadCounts) -> Iterator[Post]:
    """Posts of a JSONL file: one object a line with ``text``, ``chat_id`` and ``message_id`` (Bot API ids),
    and optionally ``date`` (epoch seconds or ISO 8601), ``chat_title``, ``chat_username``, ``chat_type``."""
    for number, raw in enumerate(handle, 1):
        line = raw.decode("utf-8", errors="surrogateescape").strip()
        if not line:
            continue
        counts.messages += 1
        where = f"{name}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            counts.skipped += 1
            report(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); skipped")
            continue
        except RecursionError:  # "[[[[…" thousands deep: json.loads gives up
            counts.skipped += 1
            report(f"{where}: JSON nested too deeply to be a post; skipped")
            continue
        problem = _jsonl_problem(obj)
        if problem:
            counts.skipped += 1
            report(f"{where}: {problem}; skipped")
            continue
        text = scan_text(obj["text"])
        if text is None:
            counts.no_text += 1
            continue
        counts.posts += 1
        yield Post(chat_id=obj["chat_id"], message_id=obj["message_id"], text=text, date=message_date(
            {"date_unixtime": obj["date"]} if isinstance(obj.get("date"), (int, float)) else {"date": obj.get("date")}),
            chat_type=_str(obj.get("chat_type")), chat_title=_str(obj.get("chat_title")),
            chat_username=_str(obj.get("chat_username")))


def _jsonl_problem(obj) -> str | None:
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    if not isinstance(obj.get("text"), str):
        return 'missing "text" (a string)'
    for key in ("chat_id", "message_id"):
        if not isinstance(obj.get(key), int) or isinstance(obj.get(key), bool):
            return f'missing "{key}" (an integer): scanned posts are stored by chat and message id'
    return None


def _str(value) -> str | None:
    return value if isinstance(value, str) and value else None
