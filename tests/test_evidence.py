import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier.evidence import SIGNAL_PARTS, extract, find_signal_parts


@pytest.mark.parametrize(
    "text, exchange",
    [
        ("sign up on Binance today", "binance"),
        ("OKX and OKEx are one", "okx"),
        ("欧易注册", "okx"),
        ("withdraw from bitfinex", "bitfinex"),
        ("KuCoin listing", "kucoin"),
        ("火币返佣", "huobi"),
        ("HTX app", "huobi"),
        ("bybit futures", "bybit"),
        ("gate.io account", "gate"),
        ("MEXC spot", "mexc"),
        ("Bitget copy trading", "bitget"),
        ("Coinbase wallet", "coinbase"),
        ("Kraken pro", "kraken"),
        ("B i n a n c e", "binance"),
        ("币安", "binance"),
    ],
)
def test_known_exchanges_are_found(text, exchange):
    assert exchange in extract(text).exchanges


def test_a_whole_token_name_counts_only_as_a_token_beside_a_name_found_anywhere():
    assert extract("binance or okx, your pick").exchanges == ["binance", "okx"]
    assert extract("mybinancebonus at tokxyz.example").exchanges == ["binance"]
    assert set(extract("kraken, htx and mexc").exchanges) == {"kraken", "huobi", "mexc"}


def test_gate_as_an_english_word_is_not_an_exchange():
    assert extract("meet me at the gate").exchanges == []


def test_urls_domains_and_referral_parameters():
    ev = extract("Buy: https://presale.moonpad.io/?ref=LUctm8ReAm now, or www.binance.com/join?ref=XYZ99.")
    assert ev.domains == ["presale.moonpad.io", "binance.com"]
    assert "ref=LUctm8ReAm" in ev.referrals and "ref=XYZ99" in ev.referrals


def test_referral_codes_in_text_and_paths():
    assert "88X" in extract("mirror binance-cn.example, code 88X for 20% off").referrals
    assert "ABC123" in extract("币安注册邀请码：ABC123 返佣40%").referrals
    assert "/join/QWE88" in extract("https://partner.bybit.com/join/QWE88").referrals
    assert extract("code review at noon").referrals == []


@pytest.mark.parametrize(
    "text",
    [
        "Referral ID: ABCD1234",
        "ınvite id: ABCD1234",
        "İnvite ID: ABCD1234",
        "sıgn up id: ABCD1234",
        "ref ıd ABCD1234",
        "邀请ID：K9K9K9",
        'Bonus CODE "WXYZ99"',
    ],
)
def test_referral_text_is_found_whatever_the_case_or_script_of_its_keyword(text):
    """The cheap check that runs before the referral pattern must let through everything the pattern
    matches, including the dotless and dotted Turkish i that case-folding keeps."""
    assert extract(text).referrals, text


def test_the_referral_prefilter_lets_through_every_post_the_pattern_matches():
    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
    from classifier.evidence import _REFERRAL_TEXT, _may_hold_referral_text
    from classifier.normalize import clean, fold

    texts = [p.text for p in load_corpus([BUNDLED_DATA_DIR])]
    texts += [t.replace("i", "ı") for t in texts] + [t.upper().replace("I", "İ") for t in texts]
    matched = 0
    for text in texts:
        cleaned = clean(text)
        if _REFERRAL_TEXT.search(cleaned):
            matched += 1
            assert _may_hold_referral_text(cleaned, fold(cleaned)), text
    assert matched > 100  # the corpus does hold referral codes in text


def test_telegram_links_and_handles_but_not_emails():
    ev = extract("Join t.me/pump_signals or https://t.me/+AbCdEf, DM @vip_admin; mail me@example.com")
    assert ev.telegram_links == ["t.me/pump_signals", "https://t.me/+AbCdEf"]
    assert ev.handles == ["vip_admin"]


@pytest.mark.parametrize(
    "kind, address",
    [
        ("evm", "0x1234567890abcdef1234567890ABCDEF12345678"),
        ("tron", "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9"),
        ("btc", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
        ("btc", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
        ("solana", "92tbcNAx7MhZbme3EP6BisYgD9SweTPsGvC7GbTdpump"),
        ("ton", "EQD4FPq-PRDieyQKkizFTRtSDyucUIqrj0v_zXJmqaDp6_0t"),
    ],
)
def test_wallet_and_contract_addresses(kind, address):
    assert extract(f"CA: {address} buy now").addresses == {kind: [address]}


def test_chinese_otc_vocabulary():
    ev = extract("长期收U，汇率置顶，见U打款，承兑跑分勿扰")
    assert {"收u", "汇率", "打款", "承兑", "跑分"} <= set(ev.otc_terms)


def test_features_name_what_was_found():
    ev = extract("币安注册邀请码：ABC123 https://www.binance.com/zh-CN/register?ref=ABC123")
    features = ev.features()
    assert features["exchange with referral"] == 1.0
    assert "referral code or link" in features
    assert ev.describe("exchange named") == "exchange named: binance"


def test_plain_chat_has_no_evidence_features_beyond_none():
    assert extract("see you tomorrow at lunch").features() == {}


@pytest.mark.parametrize(
    "text, parts",
    [
        (
            "#ETH/USDT LONG x20 entry 3120-3085 tp 3150/3190 sl 3040",
            {"pair", "direction", "entry", "targets", "stop", "leverage"},
        ),
        ("sol short here, targets 141 / 138, stop 149", {"direction", "targets", "stop"}),
        ("btc 做多 入场 62000 止损 61000 10倍", {"direction", "entry", "stop", "leverage"}),
    ],
)
def test_the_parts_of_a_trading_call_are_found(text, parts):
    ev = extract(text)
    assert set(ev.signal_parts) == parts
    assert "trading call" in ev.features()


def test_one_trading_word_is_not_a_call():
    assert "trading call" not in extract("I will buy some bread later").features()
    assert "trading call" not in extract("BTC looks strong today").features()


def test_a_testimonial_with_a_way_to_reach_the_manager():
    ev = extract("i invested $1000 with her and received 9400 in a week, whatsapp +44 7700 900123")
    assert ev.testimonial and ev.phones == ["whatsapp +44 7700 900123"]
    assert ev.features()["testimonial with contact"] == 1.0
    assert ev.describe("phone number") == "phone number: whatsapp +44 7700 900123"


def test_a_testimonial_without_contact_or_a_number_without_testimonial_is_not_both():
    assert "testimonial with contact" not in extract("i earned 20% this year by holding btc").features()
    features = extract("our office number is +49 30 1234567").features()
    assert "phone number" in features and "testimonial with contact" not in features


@pytest.mark.parametrize("text", ["😀" * 200, "Happy birthday mum! " + "🎉" * 100, "🚀🚀🚀🔥🔥🔥💰💰💰"])
def test_emoji_are_counted_but_are_no_feature(text):
    ev = extract(text)
    assert ev.emoji > 0
    assert "emoji" not in ev.features()


# Text made of the pieces trading calls are built from, so that random draws often match the patterns.
_CALL_PIECES = st.sampled_from(
    ["long", "short", "buy", "sell", "entry", "enter", "tp", "t", "target", "take", "profit", "sl", "stop", "loss",
     "lev", "leverage", "cross", "isolated", "x", "10", "3", "usdt", "usd", "btc", "eth", "bnb", "/", " ", "-", "zone",
     "at", "做多", "做空", "止盈", "止损", "倍", "杠杆", "全仓", "入场", "目标", "防守", "e", "n", "a", "٣", "开"]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CALL_PIECES, max_size=12).map("".join))
def test_a_call_part_is_searched_whenever_its_pattern_could_match(text):
    # The substring triggers only skip work: every match of a part's pattern holds one of them.
    for name, (triggers, pattern) in SIGNAL_PARTS.items():
        if pattern.search(text):
            assert any(t in text for t in triggers), name
    assert find_signal_parts(text) == [name for name, (_, pattern) in SIGNAL_PARTS.items() if pattern.search(text)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CALL_PIECES, max_size=12).map("".join))
def test_the_lookahead_opening_a_call_part_changes_no_match(text):
    # Each pattern is "(?=[first characters])(?:bare pattern)": the lookahead only lets re skip ahead.
    for name, (_, pattern) in SIGNAL_PARTS.items():
        assert pattern.pattern.startswith("(?=["), name
        bare = re.compile(pattern.pattern.split("])(?:", 1)[1].removesuffix(")"))
        found, expected = pattern.search(text), bare.search(text)
        assert (found and found.span()) == (expected and expected.span()), name
