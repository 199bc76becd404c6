"""The digest: counts per label and chat, pending reviews, top posts, change; nothing new means no digest."""

from bot.digest import queue_digest
from bot.post import Post
from bot.storage import Storage
from tests.conftest import LINK_BAIT, MODERATOR_CHAT_ID, outside_code
from tests.fakes.classifier import FakeClassifier

CLF = FakeClassifier()


def scan(storage, chat_id, message_id, text, title):
    storage.record_scan(Post(chat_id, message_id, text, chat_title=title), CLF.predict(text), threshold=0.8,
                        store_benign_text=False)


def test_digest_content_change_and_silence(tmp_path):
    now = [1_000_000.0]
    storage = Storage.open(tmp_path / "x.db", clock=lambda: now[0])
    assert queue_digest(storage, MODERATOR_CHAT_ID) is None  # nothing yet
    scan(storage, -100, 1, "Presale live", "Gems <b>")
    scan(storage, -100, 2, "VIP signals", "Gems <b>")
    scan(storage, -200, 3, "maybe-token soon", "Other")
    scan(storage, -200, 4, "just chat", "Other")
    now[0] += 60
    first = storage.outbox_row(queue_digest(storage, MODERATOR_CHAT_ID))["text"]
    assert "Flags: <b>3</b> (ICO / token sale 2, Trading service 1)" in first
    assert "<code>Gems &lt;b&gt;</code>: 2" in first and "pending reviews: <b>3</b>" in first
    assert first.index("p=0.97") < first.index("p=0.95") < first.index("p=0.55")  # top posts, most probable first
    now[0] += 60
    assert queue_digest(storage, MODERATOR_CHAT_ID) is None  # nothing new: no digest
    scan(storage, -100, 5, "airdrop claim", "Gems <b>")
    now[0] += 60
    second = storage.outbox_row(queue_digest(storage, MODERATOR_CHAT_ID))["text"]
    assert "Flags: <b>1</b>" in second and "▼ -2 against the previous digest (3)" in second


def test_chat_titles_in_the_digest_cannot_become_links(tmp_path):
    storage = Storage.open(tmp_path / "x.db")
    scan(storage, -100, 1, "Presale live", LINK_BAIT)
    text = storage.outbox_row(queue_digest(storage, MODERATOR_CHAT_ID))["text"]
    assert text.count(f"<code>{LINK_BAIT}</code>") == 2  # by chat, and in the top posts
    assert "t.me/scam" not in outside_code(text) and "@scam_bot" not in outside_code(text)
