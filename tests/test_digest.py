"""The digest: counts per label and chat, pending reviews, top posts, change; nothing new means no digest."""

from bot.digest import build_digest, queue_digest, stats_text
from bot.post import Post
from bot.storage import PeriodFigures, Storage
from tests.conftest import LINK_BAIT, MODERATOR_CHAT_ID, outside_code
from tests.fakes.classifier import FakeClassifier

CLF = FakeClassifier()


def scan(storage, chat_id, message_id, text, title):
    storage.record_scan(
        Post(chat_id, message_id, text, chat_title=title), CLF.predict(text), threshold=0.8, store_benign_text=False
    )


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


# Figures unlike any a database would give, to see that each output renders them and computes nothing itself.
FIGURES = PeriodFigures(
    start=1_000_000.0,
    end=1_086_400.0,
    posts_scanned=41,
    flags=7,
    by_label={"ico": 4, "trading_service": 3},
    by_status={"pending": 5, "confirmed": 2},
    by_chat=[{"chat_id": -1001, "chat_title": "Twin", "flags": 4}, {"chat_id": -1002, "chat_title": None, "flags": 3}],
    reviews=2,
    pending=9,
    top=[
        {
            "id": 3,
            "chat_id": -1002,
            "chat_title": None,
            "message_id": 8,
            "label": "ico",
            "score": 0.91,
            "status": "pending",
            "link": "https://t.me/c/2/8",
        }
    ],
)


def fixed_figures(monkeypatch) -> list:
    periods = []

    def period_figures(self, start, end, top=5):
        periods.append((start, end))
        return FIGURES

    monkeypatch.setattr(Storage, "period_figures", period_figures)
    return periods


def test_the_digest_and_stats_render_one_set_of_figures(tmp_path, monkeypatch):
    storage = Storage.open(tmp_path / "x.db", clock=lambda: 1_086_400.0)
    periods = fixed_figures(monkeypatch)
    digest, count = build_digest(storage, 1_000_000.0, 1_086_400.0)
    assert count == 7 and "Flags: <b>7</b> (ICO / token sale 4, Trading service 3)" in digest
    assert "Reviews in this period: 2 · pending reviews: <b>9</b>" in digest
    assert "• <code>Twin</code>: 4\n• <code>-1002</code>: 3" in digest
    assert '1. ico p=0.91 · <code>-1002</code> · <a href="https://t.me/c/2/8">post 8</a> · pending' in digest
    text = stats_text(storage, 1)
    assert (
        "Posts scanned: 41\nFlags: 7 (ICO / token sale 4, Trading service 3)\nFlags by status: confirmed 2, pending 5"
        in text
    )
    assert "pending reviews (all time): 9" in text and "  Twin: 4\n  -1002: 3" in text
    assert "  1. ico p=0.91 · -1002 · https://t.me/c/2/8 · pending" in text
    assert periods == [(1_000_000.0, 1_086_400.0), (1_000_000.0, 1_086_400.0)]


def test_the_figures_of_a_period(tmp_path):
    now = [1_000_000.0]
    storage = Storage.open(tmp_path / "x.db", clock=lambda: now[0])
    scan(storage, -1001000000001, 1, "Presale live", "Twin")  # before the period
    now[0] += 60
    scan(storage, -1001000000001, 2, "VIP signals", "Twin")
    scan(storage, -1001000000002, 3, "airdrop claim", "Twin")  # another chat of the same title
    scan(storage, -1001000000002, 4, "maybe-token soon", "Twin")
    scan(storage, -1001000000002, 5, "just chat", "Twin")
    storage.record_review(storage.flag(1)["alert_id"], "confirm", None, 1, "M")
    figures = storage.period_figures(1_000_000.0, now[0], top=2)
    assert (figures.posts_scanned, figures.flags, figures.reviews, figures.pending) == (4, 3, 1, 3)
    assert figures.by_label == {"ico": 2, "trading_service": 1} and figures.by_status == {"pending": 3}
    assert [(c["chat_id"], c["chat_title"], c["flags"]) for c in figures.by_chat] == [
        (-1001000000002, "Twin", 2),
        (-1001000000001, "Twin", 1),
    ]
    assert [(f["message_id"], f["link"]) for f in figures.top] == [
        (2, "https://t.me/c/1000000001/2"),
        (3, "https://t.me/c/1000000002/3"),
    ]
    digest, count = build_digest(storage, 1_000_000.0, now[0])
    assert count == 3 and "<code>Twin</code>: 2" in digest and "<code>Twin</code>: 1" in digest
