"""compliance-bot classify's stream: JSONL or plain lines in, one JSON object per post out."""

import io
import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.classify_stream import classify_stream
from classifier import safe_text
from classifier.corpus import MAX_DEPTH
from tests.fakes.classifier import FakeClassifier


class Model(FakeClassifier):
    def predict_many(self, texts, reasons=5):
        return super().predict_many(texts)


def run(lines):
    out, problems = io.StringIO(), []
    summary = classify_stream(Model(), lines, out, problems.append)
    return [json.loads(line) for line in out.getvalue().splitlines()], summary, problems


def test_jsonl_keeps_other_fields_and_adds_the_verdict():
    rows, summary, problems = run(['{"text": "Presale now", "id": 7}\n', '{"text": "hello"}\n'])
    assert rows[0]["id"] == 7 and rows[0]["label"] == "ico" and rows[0]["model_version"] == "fake-1"
    assert set(rows[0]["scores"]) == {"ico", "trading_service", "benign"} and rows[0]["reasons"]
    assert rows[1]["label"] == "benign"
    assert (summary.read, summary.classified, summary.flagged, summary.skipped) == (2, 2, 1, 0) and problems == []


def test_plain_lines_are_posts_and_bad_jsonl_lines_are_named_and_skipped():
    rows, _, _ = run(["airdrop live\n", "\n", "just chat\n"])
    assert [r["text"] for r in rows] == ["airdrop live", "just chat"]
    rows, summary, problems = run(['{"text": "ok"}\n', '{"text": 5}\n', "not json\n"])
    assert [r["text"] for r in rows] == ["ok"] and summary.skipped == 2
    assert problems[0].startswith('line 2: missing "text"') and problems[1].startswith("line 3: not valid JSON")


# -- issue 16: a line nested 100,000 deep, a byte-order mark, a number too long to read ------------------------


def test_a_line_nested_100000_deep_is_named_and_the_lines_around_it_classified():
    rows, summary, problems = run(
        [
            '{"text": "Presale one"}\n',
            "[" * 100_000 + "\n",
            '{"text": "x", "a": ' + "[" * 100_000 + "\n",
            '{"text": "two"}\n',
        ]
    )
    assert [r["text"] for r in rows] == ["Presale one", "two"]
    assert problems == [
        "line 2: JSON nested deeper than 64 levels: not a post; skipped",
        "line 3: JSON nested deeper than 64 levels: not a post; skipped",
    ]
    assert (summary.read, summary.classified, summary.skipped) == (4, 2, 2)


def test_nesting_that_json_can_read_is_refused_the_same_way_whatever_the_stack():
    deep = '{"text": "x", "a": ' + "[" * 500 + "]" * 500 + "}\n"
    rows, _, problems = run(['{"text": "ok", "a": ' + "[" * 62 + "]" * 62 + "}\n", deep])
    assert [r["text"] for r in rows] == ["ok"]
    assert problems == ["line 2: JSON nested deeper than 64 levels: not a post; skipped"]


def test_a_byte_order_mark_is_not_part_of_the_first_line():
    rows, summary, problems = run(['\ufeff{"text": "Presale now", "id": 7}\n', '{"text": "hello"}\n'])
    assert [(r["text"], r.get("id")) for r in rows] == [("Presale now", 7), ("hello", None)] and problems == []
    rows, _, problems = run(["\ufeffairdrop live\n", "just chat\n"])
    assert [r["text"] for r in rows] == ["airdrop live", "just chat"] and problems == []


def test_a_number_too_long_to_read_is_named():
    rows, _, problems = run(['{"text": "ok"}\n', '{"text": "x", "n": ' + "1" * 5000 + "}\n"])
    assert [r["text"] for r in rows] == ["ok"]
    assert problems == ["line 2: not valid JSON (a number of more than 4300 digits); skipped"]


# -- property-based: any input to classify ----------------------------------------------------------------------
#
# Input is built from lines whose fate is known (a post with any other fields, a line that is refused, a blank
# line), as click hands them over: decoded, with their line breaks, a byte-order mark perhaps before the first.
# Whatever is built: no exception escapes, every refused line is named with its number, every post is written
# out with its fields and a verdict.

PROPERTY = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
VISIBLE = TEXT.filter(lambda t: t.strip())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


VERDICT = {"label", "scores", "reasons", "model_version"}


def run_jsonl(lines):
    """As run, with the output split where JSONL splits it: at line feeds only (a post may hold U+2028 or NEL)."""
    out, problems = io.StringIO(), []
    summary = classify_stream(Model(), lines, out, problems.append)
    return [json.loads(line) for line in out.getvalue().split("\n")[:-1]], summary, problems


def nested(depth: int) -> str:
    return "[" * (depth - 1) + "]" * (depth - 1)  # inside a post object: depth levels in all


@st.composite
def classify_lines(draw):
    """One line: (kind, the line, the object it must give or None)."""
    kind = draw(
        st.sampled_from(
            [
                "post",
                "post",
                "post",
                "lone_surrogate",
                "blank",
                "not_json",
                "not_object",
                "bad_text",
                "too_deep",
                "deep_enough",
                "long_number",
            ]
        )
    )
    if kind == "blank":
        return kind, draw(st.sampled_from(["", "  ", "\t"])), None
    if kind == "not_json":
        return kind, draw(st.sampled_from(["{", '{"text": ', "{'text': 'x'}", '{"text": "x"}}', "[1,", "nope"])), None
    if kind == "not_object":
        return (
            kind,
            json.dumps(draw(st.one_of(st.integers(), TEXT, st.none(), st.lists(st.integers(), max_size=3)))),
            None,
        )
    if kind == "too_deep":
        depth = draw(st.one_of(st.integers(MAX_DEPTH + 1, 2_000), st.integers(2_000, 100_000)))
        return (
            kind,
            draw(
                st.sampled_from(
                    [
                        '{"text": "x", "a": ' + nested(depth) + "}",
                        "[" * depth + "]" * depth,
                        '{"text": "x", "a": ' + "[" * depth,
                    ]
                )
            ),
            None,
        )
    if kind == "long_number":
        return kind, '{"text": "x", "n": 1' + "0" * draw(st.integers(4_301, 6_000)) + "}", None
    # Fields of the input's own: classify writes label, scores, reasons and model_version over any it had.
    fields = draw(st.dictionaries(TEXT.filter(lambda k: k not in VERDICT | {"text"}), JSON_VALUES, max_size=4))
    if kind == "bad_text":
        bad = draw(
            st.one_of(
                st.just("absent"),
                st.integers(),
                st.none(),
                st.lists(TEXT, max_size=2),
                st.sampled_from(["", "  ", "\n"]),
            )
        )
        return kind, json.dumps(fields | ({} if bad == "absent" else {"text": bad})), None
    text = draw(VISIBLE)
    if kind == "lone_surrogate":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["\ud800", "\udfff"])) + text[at:]
    if kind == "deep_enough":
        fields["deep"] = json.loads(nested(draw(st.integers(2, MAX_DEPTH))))
    obj = {"text": text} | fields
    line = json.dumps(obj, ensure_ascii=kind == "lone_surrogate" or draw(st.booleans()))
    return kind, line, obj | {"text": safe_text(text)}


@PROPERTY
@given(st.data())
def test_any_jsonl_input_every_post_is_classified_and_every_refusal_named(data):
    first = data.draw(classify_lines().filter(lambda line: line[2] is not None))  # JSONL: the first line is a post
    lines = [first] + data.draw(st.lists(classify_lines(), max_size=10))
    bom = "\ufeff" * data.draw(st.booleans())
    newline = data.draw(st.sampled_from(["\n", "\r\n"]))
    rows, summary, problems = run_jsonl([bom + lines[0][1] + newline] + [line + newline for _, line, _ in lines[1:]])
    assert [{k: v for k, v in row.items() if k not in VERDICT} for row in rows] == [
        obj for _, _, obj in lines if obj is not None
    ]
    assert all(VERDICT <= set(row) for row in rows)
    numbers = [n for n, (kind, _, obj) in enumerate(lines, 1) if obj is None and kind != "blank"]
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in numbers]
    assert all(p.endswith("; skipped") for p in problems)
    assert (summary.classified, summary.skipped) == (len(rows), len(numbers))


@PROPERTY
@given(st.lists(st.text(st.characters(blacklist_characters="\r\n"), max_size=20), max_size=8), st.booleans())
def test_any_plain_lines_are_posts_one_a_line(lines, bom):
    first = next((line for line in lines if line.strip()), None)
    if first is not None and first.lstrip().startswith("{"):
        return  # that is JSONL, the property above
    rows, summary, problems = run_jsonl(
        [("\ufeff" if bom and i == 0 else "") + line + "\n" for i, line in enumerate(lines)]
    )
    assert [row["text"] for row in rows] == [safe_text(line) for line in lines if line.strip()]
    assert problems == [] and summary.skipped == 0
