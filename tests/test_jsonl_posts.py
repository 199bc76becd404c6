"""JSONL posts for the history scan: Bot API ids required, every unusable line named and skipped."""

import io
import json
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.desktop_export import ReadCounts
from bot.jsonl_posts import read_jsonl
from bot.post import MAX_CHAT_ID, MAX_DATE, MAX_MESSAGE_ID, MIN_CHAT_ID, MIN_DATE, Post, scan_text
from classifier import MAX_CHARS, safe_text


def read(lines):
    counts, problems = ReadCounts(), []
    handle = io.BytesIO("".join(lines).encode("utf-8", "surrogatepass"))
    return list(read_jsonl(handle, "p.jsonl", problems.append, counts)), counts, problems


def test_a_post_with_its_chat_and_date():
    line = (
        json.dumps(
            {
                "text": "Presale",
                "chat_id": -1001,
                "message_id": 5,
                "date": 1714557600,
                "chat_title": "T",
                "chat_username": "t",
                "chat_type": "channel",
            }
        )
        + "\n"
    )
    (post,), counts, problems = read([line])
    assert (post.chat_id, post.message_id, post.text, post.date) == (-1001, 5, "Presale", 1714557600.0)
    assert (post.chat_title, post.chat_username, post.chat_type) == ("T", "t", "channel")
    assert (counts.messages, counts.posts, counts.skipped) == (1, 1, 0) and problems == []


def test_iso_dates_blank_text_and_the_cap():
    lines = [
        json.dumps({"text": "a" * (MAX_CHARS + 10), "chat_id": 1, "message_id": 1, "date": "2024-05-01T10:00:00"}),
        json.dumps({"text": "   ", "chat_id": 1, "message_id": 2}),
    ]
    posts, counts, _ = read([line + "\n" for line in lines])
    assert len(posts) == 1 and len(posts[0].text) == MAX_CHARS and posts[0].date == 1714557600.0
    assert counts.no_text == 1


def test_unusable_lines_are_named_with_their_number():
    lines = [
        "not json\n",
        "[1, 2]\n",
        '{"text": "x", "message_id": 1}\n',
        '{"text": "x", "chat_id": true, "message_id": 1}\n',
        "[" * 100_000 + "\n",
    ]
    posts, counts, problems = read(lines)
    assert posts == [] and counts.skipped == 5
    assert problems[0].startswith("p.jsonl:1: not valid JSON")
    assert problems[1] == "p.jsonl:2: expected a JSON object, got list; skipped"
    assert problems[2].startswith('p.jsonl:3: missing "chat_id" (an integer)')
    assert problems[3].startswith('p.jsonl:4: missing "chat_id" (an integer)')
    assert problems[4].startswith("p.jsonl:5:")


# -- issue 16: dates, ids, invalid UTF-8, a byte-order mark --------------------------------------------------


def read_bytes(data: bytes):
    counts, problems = ReadCounts(), []
    return list(read_jsonl(io.BytesIO(data), "p.jsonl", problems.append, counts)), counts, problems


def test_dates_that_cannot_be_stored_are_named_and_the_post_kept_with_its_date_unknown():
    bad = [
        1e300,
        float("inf"),
        float("nan"),
        -1,
        253402300800,
        "soon",
        True,
        10**400,
        "9999-12-31T23:59:59-05:00",
        ["2024"],
    ]
    lines = [
        json.dumps({"text": f"Presale {n}", "chat_id": -7, "message_id": n, "date": date}) + "\n"
        for n, date in enumerate(bad, 1)
    ]
    lines.append(json.dumps({"text": "fine", "chat_id": -7, "message_id": 99, "date": 253402300799}) + "\n")
    posts, counts, problems = read(lines)
    assert [(p.message_id, p.date) for p in posts] == [(n, None) for n in range(1, len(bad) + 1)] + [
        (99, 253402300799.0)
    ]
    assert len(problems) == len(bad) and counts.skipped == len(bad) and counts.posts == len(bad) + 1
    for n, problem in enumerate(problems, 1):
        assert problem.startswith(f'p.jsonl:{n}: "date" ') and problem.endswith("; stored with its date unknown")
    assert problems[0] == (
        'p.jsonl:1: "date" 1e+300 is outside the dates that can be stored (1970-01-01 to '
        "9999-12-31 UTC); stored with its date unknown"
    )
    assert (
        problems[5] == "p.jsonl:6: \"date\" 'soon' is not a Unix time or an ISO 8601 time; stored with its date unknown"
    )
    assert "a 1329-bit number" in problems[7]  # not 400 digits


def test_ids_outside_telegrams_ranges_are_refused_by_name_and_the_next_line_is_read():
    bad = [
        (2**63 - 1, 1),
        (9223372036854775000, 1),
        (0, 1),
        (-4_000_000_000_001, 1),
        (1_099_511_627_776, 1),
        (-7, 0),
        (-7, -1),
        (-7, 2**31),
        (-7, 2**63),
        (-(2**70), 1),
    ]
    lines = [json.dumps({"text": "Presale", "chat_id": c, "message_id": m}) + "\n" for c, m in bad]
    lines.append(json.dumps({"text": "Presale edge", "chat_id": -4_000_000_000_000, "message_id": 2**31 - 1}) + "\n")
    lines.append(json.dumps({"text": "Presale edge", "chat_id": 1_099_511_627_775, "message_id": 1}) + "\n")
    posts, counts, problems = read(lines)
    assert [(p.chat_id, p.message_id) for p in posts] == [(-4_000_000_000_000, 2**31 - 1), (1_099_511_627_775, 1)]
    assert counts.skipped == len(bad) == len(problems)
    assert problems[0] == (
        'p.jsonl:1: "chat_id" 9223372036854775807 is outside Telegram\'s chat ids '
        "(-4000000000000 to 1099511627775); skipped"
    )
    assert problems[2].startswith('p.jsonl:3: "chat_id" 0 is outside Telegram\'s chat ids')
    assert problems[5] == 'p.jsonl:6: "message_id" 0 is outside Telegram\'s message ids (1 to 2147483647); skipped'
    assert problems[8].startswith('p.jsonl:9: "message_id" 9223372036854775808 is outside')


def test_a_number_too_long_to_read_is_refused_by_name():
    posts, counts, problems = read(
        [
            '{"text": "Presale", "chat_id": -7, "message_id": ' + "1" * 5000 + "}\n",
            '{"text": "Presale", "chat_id": -7, "message_id": 2}\n',
        ]
    )
    assert [p.message_id for p in posts] == [2] and counts.skipped == 1
    assert problems == ["p.jsonl:1: not valid JSON (a number of more than 4300 digits); skipped"]


def test_invalid_utf8_is_named_and_the_line_read_with_the_replacement_character():
    data = (
        json.dumps({"text": "Presale BAD end", "chat_id": -7, "message_id": 1, "chat_title": "T BAD"})
        .encode()
        .replace(b"BAD", b"\xed\xa0\x80")
        + b"\n"
        + b'{"text": "Presale \xff", "chat_id": -7, "message_id": 2}\n'
        + b"\xff not json\n"
    )
    posts, counts, problems = read_bytes(data)
    assert [(p.text, p.chat_title) for p in posts] == [
        ("Presale \ufffd\ufffd\ufffd end", "T \ufffd\ufffd\ufffd"),
        ("Presale \ufffd", None),
    ]
    first, second = data.index(b"\xed"), data.split(b"\n")[1].index(b"\xff")  # offsets from 0
    assert (
        problems[0]
        == f"p.jsonl:1: invalid UTF-8 at byte {first} of the line (ED A0 80), replaced by U+FFFD; the line is read"
    )
    assert (
        problems[1]
        == f"p.jsonl:2: invalid UTF-8 at byte {second} of the line (FF), replaced by U+FFFD; the line is read"
    )
    assert problems[2].startswith("p.jsonl:3: not valid JSON") and len(problems) == 3  # one problem a line
    assert counts.posts == 2 and counts.skipped == 3


def test_lone_surrogates_in_every_stored_field_become_the_replacement_character():
    line = (
        '{"text": "Presale \\udc00", "chat_id": -7, "message_id": 1, "chat_title": "T \\ud800", '
        '"chat_username": "u\\udfff", "chat_type": "channel\\udc00"}\n'
    )
    [post], _, problems = read([line])
    assert (post.text, post.chat_title, post.chat_username, post.chat_type) == (
        "Presale \ufffd",
        "T \ufffd",
        "u\ufffd",
        "channel\ufffd",
    )
    assert problems == []
    post.chat_title.encode("utf-8")  # storable


def test_a_byte_order_mark_is_accepted_at_the_start_of_the_file():
    data = b"\xef\xbb\xbf" + json.dumps({"text": "Presale bom", "chat_id": -7, "message_id": 1}).encode() + b"\n"
    posts, counts, problems = read_bytes(data)
    assert [p.text for p in posts] == ["Presale bom"] and problems == [] and counts.skipped == 0


# -- property-based: any JSONL file ---------------------------------------------------------------------------
#
# Files are built from lines whose fate is known (a good post, a post whose date cannot be stored or whose bytes
# are not all UTF-8, a line that is refused, a blank line), with or without a byte-order mark, LF or CRLF. Whatever
# is built: no exception escapes, every refused or mended line is named with its number, every good post is read.

PROPERTY = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
VISIBLE = TEXT.filter(lambda t: t.strip())
NAMES = st.one_of(st.none(), TEXT)
CHAT_IDS = st.integers(MIN_CHAT_ID, MAX_CHAT_ID).filter(bool)
MESSAGE_IDS = st.integers(1, MAX_MESSAGE_ID)
MARKER = "\u2603BAD\u2603"  # stands for invalid bytes until the line is written
INVALID = [b"\xff", b"\x80", b"\xed\xa0\x80", b"\xc3", b"\xf0\x9f\x98"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def good_dates(draw):
    """A date a post may carry, and the Unix time it means."""
    kind = draw(st.sampled_from(["none", "int", "float", "iso", "numeric string"]))
    if kind == "none":
        return {}, None
    if kind == "iso":
        moment = draw(st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30)))
        return {"date": moment.isoformat()}, moment.replace(tzinfo=timezone.utc).timestamp()
    if kind == "float":
        seconds = draw(st.floats(MIN_DATE, MAX_DATE))
        return {"date": seconds}, seconds
    seconds = draw(st.integers(int(MIN_DATE), int(MAX_DATE)))
    return {"date": str(seconds) if kind == "numeric string" else seconds}, float(seconds)


BAD_DATES = st.one_of(
    st.sampled_from(
        [
            1e300,
            float("inf"),
            float("-inf"),
            float("nan"),
            -1,
            MAX_DATE + 1,
            "soon",
            "",
            True,
            10**400,
            "9999-12-31T23:59:59-05:00",
            "1e999",
            "-99999999999999",
        ]
    ),
    st.integers(int(MAX_DATE) + 1, 10**30),
    st.integers(-(10**30), -1),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def jsonl_lines(draw):
    """One line: (kind, its bytes without the line break, the post it must give or None)."""
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good",
                "good",
                "lone_surrogate",
                "bad_date",
                "invalid_bytes",
                "no_text",
                "blank",
                "not_json",
                "not_object",
                "bad_text",
                "bad_ids",
                "deep",
                "long_number",
            ]
        )
    )
    if kind == "blank":
        return kind, draw(st.sampled_from([b"", b"  ", b"\t"])), None
    if kind == "not_json":
        return (
            kind,
            draw(st.sampled_from([b"not json", b"{", b'{"text": ', b"[1,", b"nul", b"'x'", b'{"a": 1}}'])),
            None,
        )
    if kind == "not_object":
        return (
            kind,
            json.dumps(draw(st.one_of(st.integers(), TEXT, st.none(), st.lists(st.integers(), max_size=3)))).encode(),
            None,
        )
    if kind == "deep":
        depth = draw(st.integers(5_000, 100_000))
        return kind, draw(st.sampled_from([b"[" * depth + b"]" * depth, b'{"text": "x", "a": ' + b"[" * depth])), None
    if kind == "long_number":
        return (
            kind,
            b'{"text": "x", "chat_id": 1' + b"0" * draw(st.integers(4_301, 6_000)) + b', "message_id": 1}',
            None,
        )
    obj = {"text": draw(VISIBLE), "chat_id": draw(CHAT_IDS), "message_id": draw(MESSAGE_IDS)}
    if kind == "bad_text":
        bad = draw(st.one_of(st.just(None), st.integers(), st.lists(TEXT, max_size=2)))
        obj = {k: v for k, v in obj.items() if k != "text"} | ({} if bad is None else {"text": bad})
        return kind, json.dumps(obj).encode(), None
    if kind == "bad_ids":
        key = draw(st.sampled_from(["chat_id", "message_id"]))
        low, high = (MIN_CHAT_ID, MAX_CHAT_ID) if key == "chat_id" else (1, MAX_MESSAGE_ID)
        bad = draw(
            st.one_of(
                st.booleans(),
                st.floats(),
                TEXT,
                st.none(),
                st.just(0),
                st.integers(high + 1, 10**400),
                st.integers(-(10**400), low - 1),
            )
        )
        return kind, json.dumps(obj | {key: bad}).encode(), None
    if kind == "no_text":
        obj["text"] = draw(st.sampled_from(["", " ", "\n\t "]))
    if kind == "lone_surrogate":
        at = draw(st.integers(0, len(obj["text"])))
        obj["text"] = obj["text"][:at] + draw(st.sampled_from(["\ud800", "\udfff"])) + obj["text"][at:]
    if kind == "invalid_bytes":
        at = draw(st.integers(0, len(obj["text"])))
        obj["text"] = obj["text"][:at] + MARKER + obj["text"][at:]
    date_field, date = draw(good_dates())
    if kind == "bad_date":
        date_field, date = {"date": draw(BAD_DATES)}, None
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "chat_title": NAMES,
                "chat_username": NAMES,
                "chat_type": NAMES,
                "views": JSON_VALUES,
                "nested": st.just([[[[[[1]]]]]]),
            },
        )
    )
    obj |= date_field | extra
    line = json.dumps(obj, ensure_ascii=kind == "lone_surrogate" or draw(st.booleans()))
    data = line.encode("utf-8")
    text = obj["text"]
    if kind == "invalid_bytes":
        bad = draw(st.sampled_from(INVALID))
        data = data.replace(json.dumps(MARKER, ensure_ascii=False)[1:-1].encode(), bad)
        data = data.replace(json.dumps(MARKER, ensure_ascii=True)[1:-1].encode(), bad)
        text = text.replace(MARKER, "\ufffd" * len(bad))
    post = None
    if kind != "no_text":
        post = Post(
            obj["chat_id"],
            obj["message_id"],
            scan_text(safe_text(text)),
            date,
            *(safe_text(obj[k]) if obj.get(k) else None for k in ("chat_type", "chat_title", "chat_username")),
        )
    return kind, data, post


@PROPERTY
@given(st.lists(jsonl_lines(), max_size=12), st.booleans(), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_any_jsonl_file_every_good_post_is_read_and_every_refusal_named(lines, bom, newline, last_newline):
    data = b"\xef\xbb\xbf" * bom + newline.join(raw for _, raw, _ in lines) + newline * last_newline
    posts, counts, problems = read_bytes(data)
    assert posts == [post for _, _, post in lines if post is not None]
    expected = []
    for number, (kind, _, _) in enumerate(lines, 1):
        if kind in ("good", "lone_surrogate", "no_text", "blank"):
            continue
        ending = {"bad_date": "; stored with its date unknown", "invalid_bytes": "; the line is read"}.get(
            kind, "; skipped"
        )
        expected.append((f"p.jsonl:{number}: ", ending))
    assert len(problems) == len(expected) == counts.skipped
    for problem, (start, ending) in zip(problems, expected):
        assert problem.startswith(start) and problem.endswith(ending), (problem, start, ending)
    assert counts.messages == sum(kind != "blank" for kind, _, _ in lines)
    assert counts.no_text == sum(kind == "no_text" for kind, _, _ in lines)
    for post in posts:
        assert MIN_CHAT_ID <= post.chat_id <= MAX_CHAT_ID and 1 <= post.message_id <= MAX_MESSAGE_ID
        assert post.date is None or MIN_DATE <= post.date <= MAX_DATE
        for text in (post.text, post.chat_title, post.chat_username, post.chat_type):
            (text or "").encode("utf-8")  # storable: no lone surrogate


@PROPERTY
@given(st.binary(max_size=400))
def test_any_bytes_are_read_or_named_line_by_line(data):
    posts, counts, problems = read_bytes(data)
    lines = data.split(b"\n")
    assert all(p.startswith("p.jsonl:") for p in problems)
    assert counts.posts == len(posts) and counts.messages <= len(lines)
