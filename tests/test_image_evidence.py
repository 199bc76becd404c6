"""What of a verdict came from a post's picture: the text read from it and the reasons found in that text."""

from bot.image_evidence import image_reasons, image_summary
from classifier import Reason

TEXT = "Join our channel today\n🖼 币安注册返佣 邀请码 ABC123 收U <b>承兑</b>\nhttps://t.me/x"
REASONS = [
    Reason("evidence", "exchange with referral: binance, ABC123", 0.7),
    Reason("evidence", "chinese otc slang: 收u, 承兑", 0.7),
    Reason("word", "join", 0.3),
    Reason("chars", "返佣", 0.1),
    Reason("language", "Russian, not covered by the model: scores unreliable", 0.0),
]


def test_the_reasons_found_in_the_image_text_are_picked_without_case_or_spaces():
    found = image_reasons(TEXT, REASONS)
    assert [r.feature for r in found] == [
        "exchange with referral: binance, ABC123",
        "chinese otc slang: 收u, 承兑",
        "返佣",
    ]
    assert image_reasons("Join\nno picture here", REASONS) == []


def test_the_summary_escapes_the_image_text_and_is_none_without_one():
    html = image_summary(TEXT, REASONS, html=True)
    assert html.startswith("🖼 Read from the image: <code>币安注册返佣 邀请码 ABC123 收U &lt;b&gt;承兑&lt;/b&gt;</code>")
    assert "Weighed from the image: <code>exchange with referral: binance, ABC123</code>" in html
    assert "<b>" not in html
    plain = image_summary(TEXT, REASONS, html=False, limit=12)
    assert plain.splitlines()[0] == "Read from the image: 币安注册返佣 邀请码…"
    assert image_summary("no picture", REASONS, html=True) is None
