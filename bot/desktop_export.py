"""Reading Telegram Desktop JSON exports: posts the bot could not see live.

Telegram Desktop exports a single chat as ``result.json`` (``name``, ``type``, ``id``, ``messages``) or a
whole account (``chats.list`` and ``left_chats.list``, each a list of such chats). Exports are read as a
stream with ijson, so a 200,000-message file is never held in memory whole. A message's text becomes
the text the live bot would scan (:func:`bot.post.scan_text`): the visible text, then the URLs behind
text links, URL buttons and the forwarded-from name, one per line; chat ids become Bot API ids, so a
post read from an export and the same post seen live are one row.

Every message or line that cannot be used is reported through ``report`` with where it is, and skipped. What
enters is checked where it enters: the bytes (:class:`_Utf8`: a byte-order mark, invalid UTF-8), the chat and
message ids (Telegram's ranges) and the dates (what the rest of the bot can show), see :mod:`bot.post`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import ijson

from bot.export_images import ExportPictures
from bot.post import MAX_CHAT_ID, MIN_CHAT_ID, Post, chat_id_problem, message_id_problem, post_date, scan_text, shown
from classifier import safe_text

# Telegram Desktop's chat types → Bot API chat types.
CHAT_TYPES = {
    "public_channel": "channel",
    "private_channel": "channel",
    "public_supergroup": "supergroup",
    "private_supergroup": "supergroup",
    "private_group": "group",
    "personal_chat": "private",
    "bot_chat": "private",
    "saved_messages": "private",
}
CHANNEL_ID_OFFSET = 1_000_000_000_000  # Bot API id of a channel or supergroup: -(10^12 + id), the "-100" prefix
# The ids an export gives (MTProto's, https://core.telegram.org/api/bots/ids): users 1 to 2^40 - 1, basic groups 1 to
# 999,999,999,999; a channel's or supergroup's, once -100 is put before it, within the Bot API's range.
EXPORT_ID_RANGES = {
    "private": ("user", MAX_CHAT_ID),
    "group": ("basic group", 999_999_999_999),
    "channel": ("channel", -MIN_CHAT_ID - CHANNEL_ID_OFFSET),
    "supergroup": ("supergroup", -MIN_CHAT_ID - CHANNEL_ID_OFFSET),
}

_CHAT_PREFIXES = ("", "chats.list.item", "left_chats.list.item")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


_META = {_join(p, k): k for p in _CHAT_PREFIXES for k in ("name", "type", "id")}
_MESSAGES = {_join(p, "messages.item") for p in _CHAT_PREFIXES}
_MESSAGE_LISTS = {_join(p, "messages") for p in _CHAT_PREFIXES}
_CHAT_STARTS = {p for p in _CHAT_PREFIXES if p}
_SCALARS = ("string", "number", "boolean", "null")


class ExportError(Exception):
    """The file as a whole cannot be read further; what was read before stands."""


# A Telegram Desktop export nests about eight levels deep (chats.list.item.messages.item.text.item …).
# ijson.parse builds every event's prefix from the whole path, so a file of "[[[[…" costs time and memory
# quadratic in its depth: 200 KB of brackets exhausted gigabytes. Deeper than this is not an export.
MAX_DEPTH = 64


# Bytes that are not UTF-8, as the "surrogateescape" decoder gives them.
_INVALID_UTF8 = re.compile("[\udc80-\udcff]+")
# What decides whether a JSON escape is a lone surrogate (group "lone", the one to replace): an escaped backslash,
# matched first so that "\\\\udc00" (a backslash, then "udc00") is left alone, and a surrogate pair. Other
# escapes ("\\n", "\\u00e9") cannot start one of these, nor hide a backslash that could.
# (One leading backslash, for the regex engine to find candidates fast: eight times faster than an alternation.)
_ESCAPE = re.compile(
    r"\\(?:\\|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(?P<lone>u[dD][89a-fA-F][0-9a-fA-F]{2}))"
)
_LONGEST_ESCAPE = 12  # a surrogate pair, "\\ud83d\\ude00"


class _Utf8:
    """The file's bytes as ijson can read them, checked where they enter.

    ijson stops at the first byte that is not UTF-8 with a UnicodeDecodeError, and so at an escaped lone
    surrogate ("\\udc00"), which it turns into such bytes itself. Here a leading byte-order mark is dropped,
    invalid UTF-8 (raw surrogates ED A0 80, stray bytes) becomes U+FFFD, counted, for :meth:`problem` to name,
    and a lone surrogate escape becomes "\\ufffd", as the live bot and the JSONL reader store one. A read never
    cuts a character or an escape in two.
    """

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.head: bytes | None = b""  # the first bytes, until it is known whether they are a byte-order mark
        self.position = 0  # offset in the file of the next byte handed to the decoder
        self.carry = ""  # decoded text held back: an escape may continue in the next read
        self.ended_invalid = False  # the text so far ends inside a run of invalid bytes
        self.invalid = 0  # runs of invalid bytes
        self.first_invalid: tuple[int, str] | None = None  # offset and bytes (hex) of the first
        self.done = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while not self.done:
            chunk = self.handle.read(size if size and size > 0 else 65536)
            final = not chunk
            if self.head is not None:
                self.head += chunk
                if len(self.head) < len(codecs.BOM_UTF8) and not final:
                    continue
                chunk, self.head = self.head, None
                if chunk.startswith(codecs.BOM_UTF8):
                    chunk, self.position = chunk[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
            start = self.position - len(self.decoder.getstate()[0])  # where the text decoded now begins
            self.position += len(chunk)
            text = self.decoder.decode(chunk, final)
            try:
                text.encode("utf-8")  # fails only on the invalid bytes decoded as surrogates: a fast test for them
            except UnicodeEncodeError:
                text = self._replace_invalid(text, start)
            else:
                self.ended_invalid = self.ended_invalid and not text
            out = self._replace_lone_surrogate_escapes(text, final)
            self.done = final
            if out:
                return out.encode("utf-8")
        return b""

    def _replace_invalid(self, text: str, start: int) -> str:
        for match in _INVALID_UTF8.finditer(text):
            if match.start() == 0 and self.ended_invalid:
                continue  # the same run, cut by a read
            self.invalid += 1
            if self.first_invalid is None:
                offset = start + len(text[: match.start()].encode("utf-8", "surrogateescape"))
                raw = match.group().encode("utf-8", "surrogateescape")
                self.first_invalid = (offset, raw[:8].hex(" ").upper() + (" …" if len(raw) > 8 else ""))
        self.ended_invalid = "\udc80" <= text[-1] <= "\udcff"
        return _INVALID_UTF8.sub(lambda m: "\ufffd" * len(m.group()), text)

    def _replace_lone_surrogate_escapes(self, text: str, final: bool) -> str:
        text, self.carry = self.carry + text, ""
        if "\\" not in text:
            return text  # no escape at all, none cut in two
        # Text from ``limit`` on waits for the next read, unless a match begun before it ends after it.
        limit = len(text) if final else len(text) - _LONGEST_ESCAPE
        cut, pieces, done = max(limit, 0), [], 0
        for match in _ESCAPE.finditer(text):
            if match.start() >= limit:
                break
            cut = max(cut, match.end())
            if match.group("lone"):
                pieces += [text[done : match.start()], "\\ufffd"]
                done = match.end()
        pieces.append(text[done:cut])
        self.carry = text[cut:]
        return "".join(pieces)

    def problem(self, name: str) -> str | None:
        """The invalid UTF-8 found, as one problem for the file; None when there was none."""
        if not self.invalid:
            return None
        offset, raw = self.first_invalid
        return (
            f"{name}: invalid UTF-8 ({self.invalid} sequence{'s' if self.invalid > 1 else ''}, the first at byte "
            f"{offset}: {raw}), replaced by U+FFFD; the file is read on"
        )


def _parse(handle: IO[bytes], name: str) -> Iterator[tuple[str, str, object]]:
    """``ijson.parse``'s (prefix, event, value) events, refusing a file nested deeper than MAX_DEPTH."""
    path: list = []
    for event, value in ijson.basic_parse(handle, use_float=True):
        if event == "map_key":
            prefix = ".".join(path[:-1])
            path[-1] = value
        elif event in ("start_map", "start_array"):
            prefix = ".".join(path)
            if len(path) >= MAX_DEPTH:
                raise ExportError(
                    f"{name}: nested deeper than {MAX_DEPTH} levels: not a Telegram Desktop export; "
                    "the messages before that point were read"
                )
            path.append(None if event == "start_map" else "item")
        elif event in ("end_map", "end_array"):
            path.pop()
            prefix = ".".join(path)
        else:
            prefix = ".".join(path)
        yield prefix, event, value


def bot_api_chat_id(export_id: int, export_type: str) -> int:
    """The Bot API id of an exported chat: channels and supergroups get the -100 prefix, basic groups
    are negative, private chats keep their id. An id that is already negative is taken as a Bot API id."""
    if export_id < 0:
        return export_id
    kind = CHAT_TYPES[export_type]
    if kind in ("channel", "supergroup"):
        return -(CHANNEL_ID_OFFSET + export_id)
    if kind == "group":
        return -export_id
    return export_id


def _plain(part, where: str) -> tuple[str, str | None]:
    """The text of one part of a ``text`` list, and the URL it hides, if any."""
    if isinstance(part, str):
        return part, None
    if isinstance(part, dict) and isinstance(part.get("text", ""), str):
        href = part.get("href") if part.get("type") == "text_link" and isinstance(part.get("href"), str) else None
        return part.get("text", ""), href
    raise ValueError(f'{where}: a part of "text" is a {type(part).__name__}, expected a string or an entity object')


def message_text(message: dict, where: str = "message", image: list[str] | None = None) -> str | None:
    """What the live bot would scan for this exported message, with the text ``image`` read from its picture;
    None when it has no text (a sticker, a photo without caption or legible text). Raises ValueError, naming the
    problem, for a message of an unexpected shape."""
    raw = message.get("text", "")
    links: list[str] = []
    if isinstance(raw, str):
        visible = raw
    elif isinstance(raw, list):
        pieces = [_plain(part, where) for part in raw]
        visible = "".join(text for text, _ in pieces)
        links = [href for _, href in pieces if href]
    else:
        raise ValueError(f'{where}: "text" is a {type(raw).__name__}, expected a string or a list')
    entities = message.get("text_entities")
    if isinstance(entities, list) and entities:
        # The same links as in a ``text`` list; take them from one place only.
        links = [
            e["href"]
            for e in entities
            if isinstance(e, dict) and e.get("type") == "text_link" and isinstance(e.get("href"), str)
        ]
    hidden = list(links)
    buttons = message.get("inline_bot_buttons")
    if isinstance(buttons, list):
        for row in buttons:
            for button in row if isinstance(row, list) else ():
                if isinstance(button, dict) and button.get("type") == "url" and isinstance(button.get("data"), str):
                    hidden.append(f"{button.get('text', '')} {button['data']}".strip())
    if isinstance(message.get("forwarded_from"), str) and message["forwarded_from"].strip():
        hidden.append(message["forwarded_from"])
    return scan_text(visible, hidden, [image] if image else ())


def message_date(message: dict) -> float | None:
    """The message's date in Unix seconds: ``date_unixtime``, else ``date`` (older exports carry only local time
    without a zone; it is read as UTC); None when it has neither. Raises ValueError, naming the field, for a date
    that is there but cannot be stored (:func:`bot.post.post_date`)."""
    if message.get("date_unixtime") is not None:
        return post_date(message["date_unixtime"], "date_unixtime")
    return post_date(message.get("date"), "date")


@dataclass
class ReadCounts:
    messages: int = 0  # message objects read
    posts: int = 0  # messages with text, handed on
    no_text: int = 0
    service: int = 0
    skipped: int = 0  # problems reported


class _Position:
    """Bytes consumed of the underlying file, for the progress bar."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle

    def __call__(self) -> int:
        try:
            return self.handle.tell()
        except (OSError, ValueError):
            return 0


def _chat_from_meta(meta: dict, where: str) -> dict:
    """Bot API fields of a chat from its exported name, type and id; ValueError when unusable."""
    export_id, export_type = meta.get("id"), meta.get("type")
    if not isinstance(export_id, int) or isinstance(export_id, bool):
        raise ValueError(f'{where}: the chat has no numeric "id" before its messages; its messages are skipped')
    if export_type not in CHAT_TYPES:
        raise ValueError(
            f"{where}: unknown chat type {export_type!r}, so its Bot API id is unknown; its messages are skipped"
        )
    if export_id < 0:  # already a Bot API id
        if problem := chat_id_problem(export_id):
            raise ValueError(f"{where}: {problem}; its messages are skipped")
    else:
        kind, highest = EXPORT_ID_RANGES[CHAT_TYPES[export_type]]
        if not 1 <= export_id <= highest:
            raise ValueError(
                f"{where}: the id is outside Telegram's {kind} ids (1 to {highest}); its messages are skipped"
            )
    chat_id = bot_api_chat_id(export_id, export_type)
    name = safe_text(meta["name"]) if isinstance(meta.get("name"), str) else None
    return {"chat_id": chat_id, "chat_type": CHAT_TYPES[export_type], "chat_title": name}


def read_export(
    handle: IO[bytes],
    name: str,
    report: Callable[[str], None],
    counts: ReadCounts,
    pictures: ExportPictures | None = None,
) -> Iterator[Post]:
    """Posts of a Telegram Desktop export (one chat, or a whole account), streamed; with ``pictures``, the text
    of each message's picture is read and scanned with it."""
    meta: dict = {}
    chat: dict | None = None
    chat_error: str | None = None
    chats_seen = 0
    builder = None
    depth = 0
    found_messages = False

    def skip(message: str) -> None:
        counts.skipped += 1
        report(message)

    stream = _Utf8(handle)
    try:
        for prefix, event, value in _parse(stream, name):
            if builder is not None:
                builder.event(event, value)
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                if depth == 0:
                    counts.messages += 1
                    post = _post(builder.value, chat, chat_error, meta, name, counts, skip, pictures)
                    builder = None
                    if post is not None:
                        yield post
                continue
            if prefix in _MESSAGES:
                if event in ("start_map", "start_array"):
                    builder, depth = ijson.ObjectBuilder(), 1
                    builder.event(event, value)
                else:
                    counts.messages += 1
                    if chat is None:  # as in _post: the chat was named once, its messages are skipped with it
                        counts.skipped += 1
                    else:
                        skip(
                            f"{name}: {_chat_label(meta)} message #{counts.messages}: a {event}, not a message object; "
                            "skipped"
                        )
            elif prefix in _META and event in _SCALARS:
                meta[_META[prefix]] = value
                chat = None  # worked out again when the messages start
            elif prefix in _MESSAGE_LISTS and event == "start_array":
                found_messages = True
                chats_seen += 1
                try:
                    chat, chat_error = _chat_from_meta(meta, f"{name}: {_chat_label(meta)}"), None
                except ValueError as exc:
                    chat, chat_error = None, str(exc)
                    counts.skipped += 1
                    report(chat_error)
            elif (prefix in _CHAT_STARTS or prefix == "") and event == "start_map":
                meta, chat, chat_error = {}, None, None
    except ijson.JSONError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if counts.messages == 0 and not found_messages and not meta:
            stream.invalid = 0  # not JSON at all: that is the problem to name
            raise ExportError(f"{name}: not a JSON file ({detail})") from None
        raise ExportError(
            f"{name}: the JSON stops being valid after {counts.messages} messages ({detail}): the file "
            "is truncated or damaged; the messages before that point were read"
        ) from None
    finally:  # named once the file is read, whatever stopped it
        if (invalid := stream.problem(name)) is not None:
            skip(invalid)
    if not found_messages:
        raise ExportError(f'{name}: not a Telegram Desktop export (no "messages" or "chats.list" found)')


def _chat_label(meta: dict) -> str:
    return f"chat {meta.get('name')!r} (id {meta.get('id')})" if meta else "chat"


def _post(message, chat, chat_error, meta, name, counts, skip, pictures=None) -> Post | None:
    number = counts.messages
    where = f"{name}: {_chat_label(meta)} message #{number}"
    if chat is None:
        # The chat itself was reported once; its messages are counted as skipped without a line each.
        counts.skipped += 1
        return None
    if not isinstance(message, dict):
        skip(f"{where}: a {type(message).__name__}, not a message object; skipped")
        return None
    if message.get("type", "message") != "message":
        counts.service += 1
        return None
    message_id = message.get("id")
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        skip(f'{where}: no numeric "id" ({shown(message_id)}); skipped')
        return None
    if problem := message_id_problem(message_id):
        skip(f"{where}: message id {problem}; skipped")
        return None
    where = f"{name}: {_chat_label(meta)} message id {message_id}"
    image = pictures.lines(message, where) if pictures is not None else None
    try:
        text = message_text(message, where, image)
    except ValueError as exc:
        skip(f"{exc}; skipped")
        return None
    if text is None:
        counts.no_text += 1
        return None
    try:
        date = message_date(message)
    except ValueError as exc:
        skip(f"{where}: {exc}; stored with its date unknown")
        date = None
    counts.posts += 1
    return Post(
        chat_id=chat["chat_id"],
        message_id=message_id,
        text=text,
        date=date,
        chat_type=chat["chat_type"],
        chat_title=chat["chat_title"],
        from_image=bool(image),
    )


position_of = _Position
