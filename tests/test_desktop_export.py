"""Reading Telegram Desktop exports: Bot API ids, the text the live bot would scan, and hostile files named,
not crashed on (issue 16: dates, ids, invalid UTF-8, a byte-order mark)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.desktop_export import CHAT_TYPES, ExportError, ReadCounts, bot_api_chat_id, message_text, read_export
from bot.post import MAX_CHAT_ID, MAX_DATE, MAX_MESSAGE_ID, MIN_CHAT_ID, MIN_DATE, Post, scan_text


def test_chat_ids_become_bot_api_ids():
    assert bot_api_chat_id(1777000111, "public_channel") == -1001777000111
    assert bot_api_chat_id(1500000001, "private_supergroup") == -1001500000001
    assert bot_api_chat_id(4000001, "private_group") == -4000001
    assert bot_api_chat_id(77, "personal_chat") == 77
    assert bot_api_chat_id(-1001234, "public_channel") == -1001234  # already a Bot API id


def test_text_entities_and_buttons_are_read_like_the_live_bot():
    msg = {
        "text": [{"type": "text_link", "text": "here", "href": "https://a.example"}],
        "text_entities": [{"type": "text_link", "text": "here", "href": "https://a.example"}],
        "inline_bot_buttons": [[{"type": "url", "text": "Buy", "data": "https://buy.example"}]],
    }
    assert message_text(msg) == "here\nhttps://a.example\nBuy https://buy.example"
    assert message_text({"text": "", "photo": "x.jpg"}) is None


# -- helpers ---------------------------------------------------------------------------------------------

CHAT = -(10**12 + 5)  # the Bot API id of the channel below


def message(mid, text, **extra) -> dict:
    return {
        "id": mid,
        "type": "message",
        "date": "2024-05-01T10:00:00",
        "date_unixtime": str(1714557600 + mid),
        "text": text,
    } | extra


def channel(messages, chat_id=5, name="C") -> dict:
    return {"name": name, "type": "public_channel", "id": chat_id, "messages": messages}


class Trickle(io.BytesIO):
    """A file that gives at most ``size`` bytes a read, as a pipe may: every character, escape and byte-order
    mark gets cut somewhere."""

    def __init__(self, data: bytes, size: int):
        super().__init__(data)
        self.size = size

    def read(self, n=-1):
        return super().read(self.size if n is None or n < 0 else min(n, self.size))


def read(data, name="e.json", chunk: int | None = None):
    """Posts, counts and the problems reported; ``data`` is an export (dumped as UTF-8) or its bytes."""
    if not isinstance(data, bytes):
        data = json.dumps(data, ensure_ascii=False).encode("utf-8")
    counts, problems = ReadCounts(), []
    handle = io.BytesIO(data) if chunk is None else Trickle(data, chunk)
    posts = list(read_export(handle, name, problems.append, counts))
    return posts, counts, problems


# -- 1. dates the rest of the system cannot represent ----------------------------------------------------


@pytest.mark.parametrize("bad", ["1e999", "253402300800", "-99999999999999", "nan", "inf", "-1", "soon", ["x"]])
def test_a_date_that_cannot_be_stored_is_named_and_the_post_kept_with_its_date_unknown(bad):
    posts, counts, problems = read(channel([message(1, "Presale one", date_unixtime=bad), message(2, "Presale two")]))
    assert [(p.message_id, p.date) for p in posts] == [(1, None), (2, 1714557602.0)]
    [problem] = problems
    assert problem.startswith("e.json: chat 'C' (id 5) message id 1: \"date_unixtime\" ")
    assert problem.endswith("; stored with its date unknown")
    assert "outside the dates that can be stored (1970-01-01 to 9999-12-31 UTC)" in problem or "is not a" in problem
    assert counts.posts == 2 and counts.skipped == 1  # a problem reported, and the post read


def test_the_last_representable_dates_are_kept_and_an_iso_date_beyond_them_is_not():
    posts, _, problems = read(
        channel(
            [
                message(1, "first second", date_unixtime="0"),
                message(2, "last second", date_unixtime="253402300799"),
                {"id": 3, "type": "message", "date": "9999-12-31T23:59:59-05:00", "text": "past the year 9999 in UTC"},
                {
                    "id": 4,
                    "type": "message",
                    "date": "2024-05-01T10:00:00",
                    "text": "no unixtime, local time read as UTC",
                },
                {"id": 5, "type": "message", "text": "no date at all"},
            ]
        )
    )
    assert [p.date for p in posts] == [0.0, 253402300799.0, None, 1714557600.0, None]
    [problem] = problems
    assert "message id 3: \"date\" '9999-12-31T23:59:59-05:00' is outside the dates that can be stored" in problem


# -- 2. chat and message ids outside Telegram's ranges -----------------------------------------------------


def test_a_chat_id_beyond_telegrams_range_is_refused_by_name_and_the_next_chat_is_read():
    export = {
        "chats": {
            "list": [
                channel([message(1, "Presale huge")], chat_id=9223372036854775000, name="Huge"),
                {"name": "Zero", "type": "personal_chat", "id": 0, "messages": [message(1, "hi")]},
                channel([message(1, "Presale fine")], name="Fine"),
            ]
        }
    }
    posts, counts, problems = read(export)
    assert posts == [Post(CHAT, 1, "Presale fine", 1714557601.0, "channel", "Fine")]
    assert problems == [
        "e.json: chat 'Huge' (id 9223372036854775000): the id is outside Telegram's channel ids (1 to 3000000000000); "
        "its messages are skipped",
        "e.json: chat 'Zero' (id 0): the id is outside Telegram's user ids (1 to 1099511627775); its messages are skipped",
    ]
    assert counts.skipped == 4  # two chats named, their two messages skipped with them


@pytest.mark.parametrize(
    ("kind", "export_id", "bot_api_id"),
    [
        ("public_channel", 0, None),
        ("private_supergroup", 3_000_000_000_000, -4_000_000_000_000),
        ("public_supergroup", 3_000_000_000_001, None),
        ("private_group", 999_999_999_999, -999_999_999_999),
        ("private_group", 1_000_000_000_000, None),
        ("personal_chat", 2**40 - 1, 2**40 - 1),
        ("bot_chat", 2**40, None),
        ("public_channel", -4_000_000_000_000, -4_000_000_000_000),
        ("public_channel", -4_000_000_000_001, None),
    ],
)
def test_each_kind_of_chat_has_its_range_of_ids(kind, export_id, bot_api_id):
    posts, _, problems = read(channel([message(1, "Presale")], chat_id=export_id) | {"type": kind})
    assert [p.chat_id for p in posts] == ([] if bot_api_id is None else [bot_api_id])
    assert len(problems) == (bot_api_id is None) and all("its messages are skipped" in p for p in problems)


@pytest.mark.parametrize("bad", [0, -5, 2**31, 2**63 - 1, -(2**63 - 1)])
def test_a_message_id_beyond_telegrams_range_is_refused_by_name_and_the_next_message_is_read(bad):
    posts, counts, problems = read(channel([message(bad, "Presale bad id"), message(2, "Presale two")]))
    assert [p.message_id for p in posts] == [2]
    assert problems == [
        f"e.json: chat 'C' (id 5) message #1: message id {bad} is outside Telegram's message ids "
        "(1 to 2147483647); skipped"
    ]
    assert counts.skipped == 1


def test_an_id_past_64_bits_stops_the_file_with_a_name_not_a_traceback():
    data = json.dumps(channel([message(1, "Presale before"), message(2, "Presale after")])).encode()
    data = data.replace(b'"id": 2,', b'"id": 9223372036854775808,')
    posts, counts, problems = [], ReadCounts(), []
    with pytest.raises(
        ExportError, match=r"e\.json: the JSON stops being valid after 1 messages \(parse error: integer"
    ):
        for post in read_export(io.BytesIO(data), "e.json", problems.append, counts):
            posts.append(post)
    assert [p.message_id for p in posts] == [1]


# -- 3. invalid UTF-8 (raw surrogate bytes) and lone surrogate escapes ---------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 2, 7])
def test_raw_surrogate_bytes_are_named_replaced_and_the_rest_of_the_file_is_read(chunk):
    data = json.dumps(
        channel([message(1, "Presale SURROGATE here 🚀"), message(2, "Presale two é")], name="Ch NAME"),
        ensure_ascii=False,
    )
    data = data.encode().replace(b"SURROGATE", b"\xed\xa0\x80").replace(b"NAME", b"\xff")
    posts, counts, problems = read(data, chunk=chunk)
    assert [(p.message_id, p.text, p.chat_title) for p in posts] == [
        (1, "Presale \ufffd\ufffd\ufffd here 🚀", "Ch \ufffd"),
        (2, "Presale two é", "Ch \ufffd"),
    ]
    offset = data.index(b"\xff")
    assert problems == [
        f"e.json: invalid UTF-8 (2 sequences, the first at byte {offset}: FF), replaced by U+FFFD; the file is read on"
    ]
    assert counts.skipped == 1 and counts.posts == 2


def test_invalid_utf8_in_a_damaged_file_is_named_with_the_damage():
    data = json.dumps(channel([message(1, "Presale one"), message(2, "Presale BAD")])).encode().replace(b"BAD", b"\xc3")
    posts, _, problems = [], ReadCounts(), []
    with pytest.raises(ExportError, match="the JSON stops being valid after 2 messages"):
        for post in read_export(io.BytesIO(data[:-2]), "e.json", problems.append, ReadCounts()):
            posts.append(post)
    assert [p.text for p in posts] == ["Presale one", "Presale \ufffd"]
    offset = data.index(b"\xc3")
    assert problems == [
        f"e.json: invalid UTF-8 (1 sequence, the first at byte {offset}: C3), replaced by U+FFFD; the file is read on"
    ]


@pytest.mark.parametrize("chunk", [None, 1, 5])
@pytest.mark.parametrize("escape", [r"\udc00", r"\ud800", r"\ud800\ud800", r"\udfff\ud83d", r"\uDC00\uD83D\uDE00"])
def test_lone_surrogate_escapes_become_the_replacement_character(escape, chunk):
    # ijson turns an escaped lone low surrogate into raw surrogate bytes, then fails to decode them; a lone high
    # one became "?", and two high ones a wrong character.
    data = json.dumps(channel([message(1, "Presale X end"), message(2, "Presale two")])).replace("X", escape)
    posts, _, problems = read(data.encode(), chunk=chunk)
    assert problems == []
    lone = escape.lower().count("\\u") - 2 * escape.lower().count("\\ud83d\\ude00")
    expected = "\ufffd" * lone + ("😀" if "DE00" in escape else "")
    assert posts[0].text == f"Presale {expected} end" and posts[1].text == "Presale two"


@pytest.mark.parametrize("chunk", [None, 1, 3, 11])
def test_surrogate_pairs_and_escaped_backslashes_are_left_alone(chunk):
    text = 'Presale 😀 \\udc00 \\\\ud800 "q" \\u00e9 \\'
    data = json.dumps(channel([message(1, text)]))  # ensure_ascii: the emoji as a surrogate pair escape
    assert "\\ud83d\\ude00" in data
    posts, _, problems = read(data.encode(), chunk=chunk)
    assert posts[0].text == text and problems == []


# -- 7. a UTF-8 byte-order mark --------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 2])
def test_an_export_with_a_byte_order_mark_is_read(chunk):
    data = b"\xef\xbb\xbf" + json.dumps(channel([message(1, "Presale bom")])).encode()
    posts, counts, problems = read(data, chunk=chunk)
    assert [p.text for p in posts] == ["Presale bom"] and problems == [] and counts.skipped == 0


def test_a_byte_order_mark_alone_or_inside_is_named():
    with pytest.raises(ExportError, match="not a JSON file"):
        read(b"\xef\xbb\xbf")
    with pytest.raises(ExportError, match="not a JSON file"):
        read(b"\xef\xbb\xbf\xef\xbb\xbf{}")


# -- property-based: any export, any bytes ------------------------------------------------------------------
#
# Exports are built from parts whose fate is known (a good post, a post whose date cannot be stored, a message
# that is refused, a chat that is refused, …) and written as Telegram Desktop would, or with a byte-order mark,
# escapes instead of UTF-8, invalid bytes, and read in pieces as small as one byte. Whatever is built: nothing
# but ExportError escapes, every refused part has its message, and every good post is read as it was written.

# Bounded: about ten seconds for this file's properties; no example database written into the project.
PROPERTY = settings(
    max_examples=120,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
VISIBLE = TEXT.filter(lambda t: t.strip())
MARKER = "\u2603BAD\u2603"  # stands for invalid bytes until the export is written
INVALID = [b"\xff", b"\x80", b"\xed\xa0\x80", b"\xc3", b"\xf0\x9f\x98"]
LONE = ["\ud800", "\udbff", "\udc00", "\udfff"]
MESSAGE_IDS = st.integers(1, MAX_MESSAGE_ID)
INT64 = st.integers(-(2**63 - 1), 2**63 - 1)  # past 64 bits ijson stops the whole file (a test above)
GOOD_DATES = st.one_of(st.none(), st.integers(int(MIN_DATE), int(MAX_DATE)).map(str))
BAD_DATES = st.one_of(
    st.sampled_from(["1e999", "253402300800", "-99999999999999", "nan", "inf", "-1", "", "soon"]),
    st.integers(int(MAX_DATE) + 1, 2**62),
    st.integers(-(2**62), -1),
    st.lists(INT64, max_size=2),
)


@st.composite
def export_messages(draw):
    """A message and what the reader must make of it: (kind, message, expected text or None, expected date)."""
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good",
                "good",
                "invalid_bytes",
                "lone_surrogate",
                "bad_date",
                "no_text",
                "service",
                "not_object",
                "bad_id",
                "bad_text",
            ]
        )
    )
    mid = draw(MESSAGE_IDS)
    if kind == "not_object":
        return (
            kind,
            draw(st.one_of(st.integers(-5, 5), TEXT, st.none(), st.booleans(), st.lists(INT64, max_size=2))),
            None,
            None,
        )
    if kind == "bad_id":
        bad = draw(
            st.one_of(
                st.none(),
                TEXT,
                st.booleans(),
                st.floats(allow_nan=False, allow_infinity=False),
                st.integers(-(2**63 - 1), 0),
                st.integers(MAX_MESSAGE_ID + 1, 2**63 - 1),
            )
        )
        return kind, {"id": bad, "type": "message", "text": "Presale"}, None, None
    if kind == "bad_text":
        bad = draw(
            st.one_of(
                INT64, st.none(), st.dictionaries(TEXT, INT64, max_size=2), st.lists(INT64, min_size=1, max_size=3)
            )
        )
        return kind, {"id": mid, "type": "message", "text": bad}, None, None
    if kind == "service":
        return kind, {"id": mid, "type": draw(st.sampled_from(["service", "other"])), "text": draw(TEXT)}, None, None
    if kind == "no_text":
        return kind, {"id": mid, "type": "message", "text": draw(st.sampled_from(["", "   ", []]))}, None, None
    text = draw(VISIBLE)
    expected = text
    if kind == "invalid_bytes":
        cut = draw(st.integers(0, len(text)))
        text, expected = text[:cut] + MARKER + text[cut:], None  # worked out once the bytes are chosen
    elif kind == "lone_surrogate":
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(LONE)) + text[cut:]
        expected = None  # depends on how the export is written
    date = draw(BAD_DATES if kind == "bad_date" else GOOD_DATES)
    message = {"id": mid, "type": "message", "text": text} | ({} if date is None else {"date_unixtime": date})
    good_date = None if date is None or kind == "bad_date" else float(date)
    return kind, message, expected, good_date


@st.composite
def export_chats(draw):
    """A chat: (good, chat dict, expected Bot API id or None, its messages as export_messages gives them)."""
    messages = draw(st.lists(export_messages(), max_size=6))
    name = draw(st.one_of(TEXT, st.none()))
    kind = draw(st.sampled_from(sorted(CHAT_TYPES)))
    good = draw(st.integers(0, 5)) > 0
    if good:
        bot_type = CHAT_TYPES[kind]
        if bot_type == "private":
            export_id = draw(st.integers(1, MAX_CHAT_ID))
        else:
            export_id = draw(st.one_of(st.integers(1, 999_999_999_999), st.integers(MIN_CHAT_ID, -1)))
        chat_id = bot_api_chat_id(export_id, kind)
    else:
        kind, export_id = draw(
            st.one_of(
                st.tuples(
                    st.sampled_from(sorted(CHAT_TYPES)),
                    st.one_of(
                        st.just(0), st.integers(4 * 10**12, 2**63 - 1), st.integers(-(2**63 - 1), MIN_CHAT_ID - 1)
                    ),
                ),
                st.tuples(TEXT.filter(lambda t: t not in CHAT_TYPES), st.integers(1, 1000)),
                st.tuples(st.sampled_from(sorted(CHAT_TYPES)), st.one_of(TEXT, st.none(), st.booleans())),
            )
        )
        chat_id = None
    chat = {"name": name, "type": kind, "id": export_id, "messages": [m for _, m, _, _ in messages]}
    return good, chat, chat_id, messages


def written(draw, value) -> tuple[bytes, bool, list[bytes]]:
    """The export as bytes, as Telegram Desktop writes it (UTF-8) or with escapes; invalid bytes put in."""
    ascii_only = draw(st.booleans())
    text = json.dumps(value, ensure_ascii=ascii_only, indent=draw(st.sampled_from([None, 1])))
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate written raw is invalid UTF-8 (ED A0 80 …)
    marker = json.dumps(MARKER, ensure_ascii=ascii_only)[1:-1].encode()
    pieces = data.split(marker)
    bad = [draw(st.sampled_from(INVALID)) for _ in pieces[1:]]
    data = pieces[0] + b"".join(b + p for b, p in zip(bad, pieces[1:]))
    return data, ascii_only, bad


def expected_text(text: str, ascii_only: bool, bad: list[bytes]) -> str:
    """What a good text with invalid bytes or a lone surrogate reads as: U+FFFD for each."""
    for raw in bad:
        text = text.replace(MARKER, "\ufffd" * len(raw), 1)
    if ascii_only:  # an escaped lone surrogate: one U+FFFD
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return "".join("\ufffd" * 3 if "\ud800" <= c <= "\udfff" else c for c in text)  # three invalid bytes


def assert_storable(post: Post) -> None:
    assert MIN_CHAT_ID <= post.chat_id <= MAX_CHAT_ID and post.chat_id != 0
    assert 1 <= post.message_id <= MAX_MESSAGE_ID
    assert post.date is None or MIN_DATE <= post.date <= MAX_DATE
    post.text.encode("utf-8")
    (post.chat_title or "").encode("utf-8")


@PROPERTY
@given(st.data())
def test_any_export_every_good_post_is_read_and_every_refusal_named(data):
    chats = data.draw(st.lists(export_chats(), min_size=1, max_size=4))
    single = len(chats) == 1 and data.draw(st.booleans())
    export = chats[0][1] if single else {"about": "x", "chats": {"about": "y", "list": [c for _, c, _, _ in chats]}}
    raw, ascii_only, bad = written(data.draw, export)
    bom = data.draw(st.booleans())
    chunk = data.draw(st.sampled_from([None, None, 1, 3, 64]))
    posts, counts, problems = read(b"\xef\xbb\xbf" * bom + raw, chunk=chunk)

    expected_posts, expected_problems, number, bad_left = [], [], 0, list(bad)
    for good, chat, chat_id, messages in chats:
        if not good:
            expected_problems.append(("chat", chat))
        for kind, message, text, date in messages:
            number += 1
            uses = (
                message.get("text", "").count(MARKER)
                if isinstance(message, dict) and isinstance(message.get("text"), str)
                else 0
            )
            mine, bad_left = bad_left[:uses], bad_left[uses:]
            if not good or kind in ("no_text", "service"):
                continue
            if kind in ("not_object", "bad_id"):
                expected_problems.append(("message", f"message #{number}:"))
                continue
            if kind == "bad_text":
                expected_problems.append(("message", f"message id {message['id']}:"))
                continue
            if kind == "bad_date":
                expected_problems.append(("message", f'message id {message["id"]}: "date_unixtime"'))
            text = expected_text(message["text"], ascii_only, mine) if text is None else text
            expected_posts.append(
                Post(chat_id, message["id"], scan_text(text), date, CHAT_TYPES[chat["type"]], chat["name"])
            )
    invalid_utf8 = bool(bad) or (not ascii_only and any(c in raw.decode("utf-8", "surrogatepass") for c in LONE))

    assert posts == expected_posts
    for post in posts:
        assert_storable(post)
    assert (
        len(problems)
        == len(expected_problems) + invalid_utf8
        == counts.skipped - sum(len(c["messages"]) for good, c, _, _ in chats if not good)
    )
    for problem, (what, expected) in zip(problems, expected_problems):
        assert problem.startswith("e.json: chat ")
        if what == "chat":
            assert problem.endswith("its messages are skipped"), problem
        else:
            assert expected in problem and problem.endswith(("; skipped", "; stored with its date unknown")), problem
    if invalid_utf8:
        assert problems[-1].startswith("e.json: invalid UTF-8 (") and "replaced by U+FFFD" in problems[-1]


def mutated(draw, data: bytes) -> bytes:
    """The bytes with a few random edits: a byte changed, bytes put in or taken out, the end cut off."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if edit == "set" and at < len(data):
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif edit == "insert":
            data = (
                data[:at]
                + draw(
                    st.sampled_from(
                        [
                            b"[",
                            b"{",
                            b"\\",
                            b'"',
                            b"\\u",
                            b"\\udc00",
                            b"\xed\xa0\x80",
                            b"\xef\xbb\xbf",
                            b"99999999999999999999",
                            b"-",
                            b"1e999",
                        ]
                    )
                )
                + data[at:]
            )
        elif edit == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        else:
            data = data[:at]
    return data


@PROPERTY
@given(st.data())
def test_any_bytes_are_read_or_named_and_what_is_read_can_be_stored(data):
    if data.draw(st.booleans()):
        export = data.draw(export_chats())[1]
        raw = mutated(data.draw, written(data.draw, export)[0])
    else:
        raw = data.draw(st.one_of(st.binary(max_size=300), st.text(max_size=100).map(lambda t: t.encode("utf-8"))))
    chunk = data.draw(st.sampled_from([None, 1, 7]))
    counts, problems, posts = ReadCounts(), [], []
    try:
        for post in read_export(Trickle(raw, chunk) if chunk else io.BytesIO(raw), "e.json", problems.append, counts):
            posts.append(post)
    except ExportError as exc:
        problems.append(str(exc))
    assert all(p.startswith("e.json: ") for p in problems), problems
    for post in posts:
        assert_storable(post)
    assert counts.posts == len(posts) and counts.skipped <= counts.messages + len(problems)
