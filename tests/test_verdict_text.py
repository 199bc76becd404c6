"""One verdict text, as a terminal and as Telegram show it."""

from bot.verdict_text import MAX_REASONS_SHOWN, verdict_text
from classifier import Reason, Verdict

VERDICT = Verdict(
    "trading_service",
    {"ico": 0.05, "trading_service": 0.9, "benign": 0.05},
    [Reason("evidence", "referral code or link: <ref=88X>", 1.2)]
    + [Reason("word", f"w{i}", 1.0 - i / 100) for i in range(10)],
    "v1",
)


def test_the_terminal_shows_every_label_every_reason_and_the_model():
    text = verdict_text(VERDICT)
    lines = text.splitlines()
    assert lines[0] == "trading_service (90%)"
    assert lines[1] == "  ico 5% · trading_service 90% · benign 5%"
    assert lines[2] == "  model v1"
    assert lines[3] == "Reasons:" and len(lines) == 4 + len(VERDICT.reasons)
    assert "<ref=88X>" in text  # plain text: nothing escaped


def test_telegram_gets_escaped_html_with_the_strongest_reasons_only():
    text = verdict_text(VERDICT, html=True)
    lines = text.splitlines()
    assert lines[0] == "<b>Trading service</b> (p=0.90)"
    assert lines[1].startswith("trading_service 0.90 · ")
    assert lines[2] == "Why:" and sum(line.startswith("• <code>") for line in lines) == MAX_REASONS_SHOWN
    assert "&lt;ref=88X&gt;" in text and "<ref=88X>" not in text
    assert lines[-1] == "<i>model v1</i>"


def test_a_language_the_model_does_not_cover_is_the_first_thing_said():
    from classifier.verdict import language_reason

    verdict = Verdict("ico", {"ico": 0.8, "trading_service": 0.1, "benign": 0.1}, [language_reason("ru")], "v1", "ru")
    assert "language: ru, not covered by the model" in verdict_text(verdict)
    assert "language: ru, not covered by the model" in verdict_text(verdict, html=True)
