"""Alert text and buttons: links, escaping, Telegram's size limits, signed callback data."""

import json

from bot.alerts import (
    MAX_BATCH,
    AlertView,
    decode_callback,
    encode_callback,
    render_alert,
    utf16_len,
)
from bot.post import Post
from bot.storage import Storage
from tests.conftest import LINK_BAIT, outside_code
from tests.fakes.classifier import FakeClassifier

SECRET = b"k" * 16


def post_link(chat_id, username, message_id):
    """The link the database makes for a flagged post: the flag_rows view (bot/storage.py) is where post
    links are made, and every flag row rendered carries its own."""
    storage = Storage.open(":memory:")
    text = "Presale now"
    storage.record_scan(
        Post(chat_id, message_id, text, chat_username=username),
        FakeClassifier().predict(text),
        threshold=1.0,
        store_benign_text=False,
    )
    [row] = storage.all_flags()
    storage.close()
    return row["link"]


# A supergroup's Bot API id is -(10^12 + its id): -1000000001234 is supergroup 1234 (-1001234 would be a basic group).
def flag(i=1, text="Presale now", title="Gems", username="gems", chat_id=-1000000001234, **kw):
    return {
        "id": i,
        "chat_id": chat_id,
        "message_id": 10 + i,
        "label": "ico",
        "score": 0.95,
        "status": "pending",
        "scores": json.dumps({"ico": 0.95, "trading_service": 0.03, "benign": 0.02}),
        "reasons": json.dumps([{"kind": "word", "feature": "presale", "weight": 1.2}]),
        "chat_title": title,
        "chat_username": username,
        "text": text,
        "link": post_link(chat_id, username, 10 + i),
    } | kw


def view(i=1, flags=None):
    return AlertView({"id": i, "label": "ico"}, flags if flags is not None else [flag(i)])


def test_post_links():
    assert post_link(-1001234567890, "gems", 5) == "https://t.me/gems/5"
    assert post_link(-1001234567890, None, 5) == "https://t.me/c/1234567890/5"
    assert post_link(-12345, None, 5) is None  # a basic group has no post links


def test_post_text_cannot_inject_markup_or_links():
    evil = '<a href="https://evil.example">click</a> <b>bold</b> @scammer https://evil.example #pump'
    text, _ = render_alert([view(flags=[flag(text=evil, title="<i>Title</i>", username=None)])], SECRET)
    assert '<a href="https://evil.example">' not in text and "&lt;a href=" in text
    assert "<i>Title</i>" not in text and "&lt;i&gt;Title&lt;/i&gt;" in text
    # Inside <pre>, Telegram does not auto-link URLs, mentions or hashtags.
    pre = text[text.index("<pre>") : text.index("</pre>")]
    assert "@scammer" in pre and "https://evil.example" in pre
    assert text.count("<a href=") == 1 and 'href="https://t.me/c/1234/11"' in text


def test_alert_fits_in_4096_characters_even_when_everything_is_long():
    long_flags = [flag(i, text="🚀" * 4096, title="T" * 128, username="u" * 32) for i in range(1, 40)]
    text, markup = render_alert([view(1, long_flags)], SECRET)
    assert utf16_len(text) <= 4096
    batch = [view(i, [flag(i, text="币" * 4096, title="標" * 128, username=None)] * 3) for i in range(1, MAX_BATCH + 1)]
    text, markup = render_alert(batch, SECRET)
    assert utf16_len(text) <= 4096
    assert len(markup.inline_keyboard) == MAX_BATCH


def test_callback_data_round_trips_fits_64_bytes_and_refuses_forgeries():
    data = encode_callback(SECRET, 2**62, "t")
    assert len(data.encode()) <= 64
    assert decode_callback(SECRET, data) == (2**62, "t")
    assert decode_callback(SECRET, data.replace(":t:", ":c:")) is None  # action swapped, signature stale
    assert decode_callback(b"other-secret", data) is None
    for junk in (None, "", "rv", "rv:1:c", "rv:x:c:00", "rv:1:z:" + "0" * 16, "x" * 65, "rv:1:c:" + "0" * 16):
        assert decode_callback(SECRET, junk) is None


def test_chat_titles_and_reviewer_names_cannot_become_links():
    review = {
        "decision": "confirm",
        "reviewer_name": LINK_BAIT,
        "reviewer_id": 111,
        "at": 1_000_000,
        "new_label": "ico",
    }
    flags = [flag(1, title=LINK_BAIT, status="confirmed"), flag(2, title=LINK_BAIT + " <b>", username=None)]
    for views in ([AlertView({"id": 1, "label": "ico"}, flags, review)], [view(1, flags), view(2, flags)]):
        text, _ = render_alert(views, SECRET)
        assert f"<code>{LINK_BAIT}</code>" in text and f"<code>{LINK_BAIT} &lt;b&gt;</code>" in text
        assert "t.me/scam" not in outside_code(text) and "@scam_bot" not in outside_code(text)
    assert (
        f"by <code>{LINK_BAIT}</code> (id 111)"
        in render_alert([AlertView({"id": 1, "label": "ico"}, flags, review)], SECRET)[0]
    )
