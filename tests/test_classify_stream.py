"""compliance-bot classify's stream: JSONL or plain lines in, one JSON object per post out."""

import io
import json

from bot.classify_stream import classify_stream
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
    assert problems[0].startswith("line 2: missing \"text\"") and problems[1].startswith("line 3: not valid JSON")
