"""JSONL posts for the history scan: Bot API ids required, every unusable line named and skipped."""

import io
import json

from bot.desktop_export import ReadCounts
from bot.jsonl_posts import read_jsonl
from classifier import MAX_CHARS


def read(lines):
    counts, problems = ReadCounts(), []
    handle = io.BytesIO("".join(lines).encode("utf-8", "surrogatepass"))
    return list(read_jsonl(handle, "p.jsonl", problems.append, counts)), counts, problems


def test_a_post_with_its_chat_and_date():
    line = json.dumps({"text": "Presale", "chat_id": -1001, "message_id": 5, "date": 1714557600,
                       "chat_title": "T", "chat_username": "t", "chat_type": "channel"}) + "\n"
    (post,), counts, problems = read([line])
    assert (post.chat_id, post.message_id, post.text, post.date) == (-1001, 5, "Presale", 1714557600.0)
    assert (post.chat_title, post.chat_username, post.chat_type) == ("T", "t", "channel")
    assert (counts.messages, counts.posts, counts.skipped) == (1, 1, 0) and problems == []


def test_iso_dates_blank_text_and_the_cap():
    lines = [json.dumps({"text": "a" * (MAX_CHARS + 10), "chat_id": 1, "message_id": 1, "date": "2024-05-01T10:00:00"}),
             json.dumps({"text": "   ", "chat_id": 1, "message_id": 2})]
    posts, counts, _ = read([line + "\n" for line in lines])
    assert len(posts) == 1 and len(posts[0].text) == MAX_CHARS and posts[0].date == 1714557600.0
    assert counts.no_text == 1


def test_unusable_lines_are_named_with_their_number():
    lines = ["not json\n", "[1, 2]\n", '{"text": "x", "message_id": 1}\n', '{"text": "x", "chat_id": true, "message_id": 1}\n',
             "[" * 100_000 + "\n"]
    posts, counts, problems = read(lines)
    assert posts == [] and counts.skipped == 5
    assert problems[0].startswith("p.jsonl:1: not valid JSON")
    assert problems[1] == "p.jsonl:2: expected a JSON object, got list; skipped"
    assert problems[2].startswith('p.jsonl:3: missing "chat_id" (an integer)')
    assert problems[3].startswith('p.jsonl:4: missing "chat_id" (an integer)')
    assert problems[4].startswith("p.jsonl:5:")
