import numpy as np
import pytest

from classifier import passages
from classifier.model import passages_to_read, prepare

NEWS = [
    "Bitcoin hovered near its weekly high as exchange-traded fund flows turned negative for a third day, "
    "and analysts pointed to the central bank minutes due on Wednesday and to thin weekend liquidity.",
    "A mid-size lending protocol paused withdrawals after an oracle returned a stale price for an hour; the "
    "team says deposits are safe and a post-mortem will follow once auditors have read the logs.",
    "Regulators in two countries published draft rules on stablecoin reserves, asking issuers for monthly "
    "attestations by an outside accountant and for redemption within two working days.",
    "A court in Singapore extended the moratorium of a bankrupt lender by three months while creditors vote "
    "on a plan that would repay about sixty cents on the dollar over four years.",
    "Miners sold more coins than they mined for the second week running, on-chain data show, as the cost "
    "of power rose in Texas during the heatwave and older machines were switched off.",
    "A large bank's research desk cut its year-end forecast for ether, citing slower fee growth on the main "
    "chain since the last upgrade moved activity to cheaper networks.",
]
SPONSORED = (
    "—— Sponsored ——\nTrade futures with zero fees for 30 days on Foxperp! Sign up with code K7Q2 and get a "
    "50 USDT bonus 👉 foxperp-app.com/r/K7Q2 — register now, the offer ends Sunday"
)


def test_a_short_post_has_no_passages():
    assert passages.split(NEWS[0]) == ()
    assert prepare(NEWS[0]).passages == ()


def test_a_chinese_character_counts_two():
    assert passages.length("币安abc") == 7


def test_a_long_post_is_cut_at_its_paragraphs_in_order_and_loses_no_text():
    text = "\n\n".join([*NEWS, SPONSORED, "Subscribe: @digest_daily"])
    parts = passages.split(text)
    assert len(parts) >= 3
    assert parts[0].startswith("Bitcoin hovered") and "Sponsored" in parts[-1]
    # The one-line sign-off is too short to stand alone: it joins the passage before it.
    assert parts[-1].endswith("@digest_daily")
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_a_long_paragraph_without_blank_lines_is_cut_at_its_lines_then_its_sentences():
    one_line = " ".join(NEWS * 2)  # no newline at all: sentences
    parts = passages.split(one_line)
    assert len(parts) > 1 and all(part.endswith(".") for part in parts)
    lines = "\n".join(NEWS * 2)  # one paragraph of lines
    assert passages.split(lines)[0] == "\n".join(NEWS[:1]) or passages.split(lines)[0].startswith(NEWS[0])


def test_a_very_long_post_gets_longer_passages_not_more():
    text = "\n\n".join(NEWS * 20)
    parts = passages.split(text)
    assert len(parts) <= passages.MAX_PASSAGES + 1
    assert min(passages.length(p) for p in parts[:-1]) >= passages.length(text) / passages.MAX_PASSAGES


def test_prepared_posts_carry_their_passages_and_only_those_needed_are_read():
    long_post = "\n\n".join([*NEWS, SPONSORED])
    prepared = [prepare(NEWS[0]), *(prepare(long_post + " " * k) for k in range(4))]
    assert prepared[1].passages == passages.split(long_post)
    count = len(prepared[1].passages)
    # Read whole: the second post reads benign, the third already 0.5 trading_service, the fourth under it,
    # the fifth hardly promotion at all.
    floor = passages.READ_FROM
    whole = np.array(
        [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.4, 0.1, 0.5], [0.45, 0.1, 0.45], [1 - floor, floor / 2, floor / 2]]
    )
    rows, owner = passages_to_read(prepared, whole, ["benign", "ico", "trading_service"])
    assert owner.tolist() == [1] * count + [3] * count
    assert rows[0] == prepare(prepared[1].passages[0])._replace(language=prepared[1].language)
    assert all(row.passages == () for row in rows)


CLASSES = ["benign", "ico", "trading_service"]


def test_a_passage_raises_a_promotion_label_at_a_discount():
    whole = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1]])
    passage = np.array([[0.1, 0.0, 0.9], [0.5, 0.3, 0.2], [0.02, 0.96, 0.02]])
    owner = np.array([0, 0, 2])
    combined = passages.combine(whole, CLASSES, passage, owner)
    # Each label from its own best passage: ico from the second, trading_service from the first.
    assert combined[0].tolist() == pytest.approx(
        [1 - 0.3 / passages.DISCOUNT - 0.9 / passages.DISCOUNT, 0.3 / passages.DISCOUNT, 0.9 / passages.DISCOUNT]
    )
    assert combined[1].tolist() == whole[1].tolist()  # no passages: unchanged
    assert combined[2].tolist() == pytest.approx([1 - 0.96 / passages.DISCOUNT - 0.1, 0.96 / passages.DISCOUNT, 0.1])
    assert (combined.sum(axis=1) <= 1 + 1e-9).all()


def test_a_passage_weaker_than_the_whole_post_changes_nothing():
    whole = np.array([[0.2, 0.1, 0.7]])
    combined = passages.combine(whole, CLASSES, np.array([[0.0, 0.05, 0.95]]), np.array([0]))
    assert combined.tolist() == whole.tolist()


def test_the_deciding_passage_is_the_best_one_for_the_posts_label_and_beats_the_whole():
    whole = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])
    passage = np.array([[0.3, 0.0, 0.7], [0.1, 0.0, 0.9], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    owner = np.array([0, 0, 0, 1])
    labels = np.array([2, 2])
    assert passages.deciding(whole, passage, owner, labels).tolist() == [1, -1]
    assert passages.deciding(whole, passage, owner, np.array([1, 2])).tolist() == [2, -1]
    assert passages.deciding(whole, passage[:0], owner[:0], labels).tolist() == [-1, -1]


def test_a_sponsored_block_flags_a_long_digest_and_is_named_first(trained_model):
    digest = "📰 Morning digest\n\n" + "\n\n".join(NEWS) + "\n\nSubscribe for tomorrow's: @digest_daily"
    assert trained_model.predict(digest).label == "benign"
    sponsored = digest.replace("\n\nSubscribe", "\n\n" + SPONSORED + "\n\nSubscribe")
    assert trained_model.pipeline.predict_proba([sponsored])[0].argmax() == trained_model.classes.index("benign")
    verdict = trained_model.predict(sponsored)
    assert verdict.label == "trading_service"
    first = verdict.reasons[0]
    assert first.kind == "passage" and first.weight >= 0.8
    named, count = first.feature.split(" reads ")[0].split(" of ")
    parts = passages.split(sponsored)
    assert int(count) == len(parts) and "Foxperp" in parts[int(named) - 1]
    assert str(first).startswith("passage: ")
    assert verdict.scores["trading_service"] == pytest.approx(first.weight / passages.DISCOUNT)
