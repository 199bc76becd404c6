import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.platforms import Platform, default_platforms
from classifier.watchlist import DOMAIN, LOOKALIKE, MIRROR, NAME, Watchlist, default_watchlist, fold_host, skeleton

BINANCE = Platform("Binance", ("binance.com",), ("币安", "幣安"))
OKX = Platform("OKX", ("okx.com", "okex.com"), ("okex", "欧易"))
GATE = Platform("Gate.io", ("gate.io", "gate.com"), ("gateio", "芝麻开门"))
HUOBI = Platform("Huobi", ("huobi.com", "htx.com"), ("火币", "htx"))
MEXC = Platform("MEXC", (), ("抹茶交易所",))
LIST = Watchlist([BINANCE, OKX, GATE, HUOBI, MEXC])


def found(text, watchlist=LIST):
    return {(m.platform, m.rule, m.found) for m in watchlist.match(text)}


def rules(text, watchlist=LIST):
    return {(m.platform, m.rule) for m in watchlist.match(text)}


# -- links to a listed domain ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, host",
    [
        ("Binance fined, https://www.binance.com/en/news says", "binance.com"),
        ("see accounts.binance.com/register", "accounts.binance.com"),
        ("BINANCE.COM", "binance.com"),
        ("ｂｉｎａｎｃｅ．ｃｏｍ", "binance.com"),  # full-width
        ("bin\u200bance.com", "binance.com"),  # a zero-width space inside
    ],
)
def test_a_listed_domain_or_its_subdomain_is_a_link_to_the_platform(text, host):
    assert ("Binance", DOMAIN, host) in found(text)
    assert not any(m.flags for m in LIST.match(text))


def test_binance_com_in_a_news_link_is_a_mention_not_a_look_alike():
    matches = LIST.match("Reuters: SEC sues Binance https://www.reuters.com/x and https://binance.com/en/blog/1")
    assert {m.rule for m in matches} == {DOMAIN, NAME}
    assert not any(m.flags for m in matches)


# -- look-alikes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, platform, listed",
    [
        ("sign up at b1nance-vip.example", "Binance", "binance.com"),  # a digit for a letter
        ("0kx.com bonus", "OKX", "okx.com"),
        ("https://bіnance.com/ref", "Binance", "binance.com"),  # Cyrillic і
        ("xn--bnance-3va.com", "Binance", "binance.com"),  # punycode of bínance.com
        ("xn--bnance-pvf.com", "Binance", "binance.com"),  # punycode of bіnance.com (Cyrillic і)
        ("bínance.com", "Binance", "binance.com"),  # an accent
        ("binnance.com", "Binance", "binance.com"),  # one letter added
        ("binace.net", "Binance", "binance.com"),  # one letter dropped
        ("binanse.io", "Binance", "binance.com"),  # one letter changed
        ("gate1o.app", "Gate.io", "gate.io"),  # the alias gateio with 1 for i
    ],
)
def test_look_alikes_of_a_listed_domain(text, platform, listed):
    matches = [m for m in LIST.match(text) if m.flags]
    assert [(m.platform, m.rule, m.listed) for m in matches] == [(platform, LOOKALIKE, listed)]
    assert str(matches[0]) == f"look-alike of {listed}: {matches[0].found}"


def test_the_reason_names_the_platform_and_the_domain():
    (match,) = LIST.match("b1nance-vip.example")
    assert str(match) == "look-alike of binance.com: b1nance-vip.example"


def test_one_edit_only_for_names_of_five_letters_or_more():
    # okx and okex are one letter apart, but names that short are matched only exactly.
    watchlist = Watchlist([Platform("OKEx", ("okex.com",), ("okex",))])
    assert found("okx.com", watchlist) == set()
    assert found("okx-app.example", watchlist) == set()
    # ... and once listed, okx.com is a link to the platform.
    listed = Watchlist([Platform("OKEx", ("okex.com", "okx.com"), ("okex",))])
    assert rules("okx.com", listed) == {("OKEx", DOMAIN)}


def test_two_edits_are_not_a_look_alike():
    assert rules("bimamce.com") == set()


# -- mirrors: the name inside another domain -----------------------------------------------------


@pytest.mark.parametrize(
    "text, platform, listed",
    [
        ("binance-cn-mirror.example", "Binance", "binance.com"),
        ("okx-app-dl.example", "OKX", "okx.com"),
        ("https://binance.vip/register", "Binance", "binance.com"),
        ("binance.com.secure-login.example", "Binance", "binance.com"),
        ("mybinancebonus.example", "Binance", "binance.com"),  # a name of 7 letters inside a label
        ("htx-pro.example", "Huobi", "htx.com"),  # an alias, and the label of a listed domain
        ("mexc-pro.example", "MEXC", "MEXC"),  # the name, which has no domain of its own here
    ],
)
def test_mirrors(text, platform, listed):
    matches = [m for m in LIST.match(text) if m.flags]
    assert [(m.platform, m.rule, m.listed) for m in matches] == [(platform, MIRROR, listed)]


@pytest.mark.parametrize(
    "text",
    [
        "delegate.example",  # gate inside another word
        "golden-gate.example",  # gate of gate.io is 4 letters and neither the name nor an alias
        "investigate.com",
        "tokx.io",
        "okxyz.example",  # okx is too short to count inside a label
        "coindesk.com/markets/binance-fined",  # the name in the path of a news link
        "price 0.0045, up 3.5%",
        "e.g. this",
    ],
)
def test_false_friends_are_not_flagged(text):
    assert not any(m.flags for m in LIST.match(text))


def test_a_short_name_inside_a_domain_is_no_match_at_all():
    assert found("delegate.example", Watchlist([Platform("Gate", ("gate.io",))])) == set()


# -- names in the text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, platform",
    [
        ("B i n a n c e listing", "Binance"),
        ("币安注册", "Binance"),
        ("火币返佣", "Huobi"),
        ("OKX and OKEx", "OKX"),
        ("gate.io account", "Gate.io"),
        ("Gate io account", "Gate.io"),
    ],
)
def test_names_and_aliases_in_the_text(text, platform):
    matches = LIST.match(text)
    assert (platform, NAME) in {(m.platform, m.rule) for m in matches}
    assert not any(m.flags for m in matches)


@pytest.mark.parametrize("text", ["meet me at the gate", "tokxyz", "binanced", "the htxx"])
def test_a_name_inside_another_word_is_not_a_mention(text):
    assert LIST.match(text) == ()


def test_a_multi_word_alias():
    watchlist = Watchlist([Platform("Crypto.com", ("crypto.com",), ("crypto com exchange",))])
    assert rules("open the Crypto com Exchange app", watchlist) == {("Crypto.com", NAME)}
    assert rules("crypto exchange com", watchlist) == set()


def test_matches_come_once_per_platform_rule_and_string_look_alikes_first():
    matches = LIST.match("Binance! binance. 币安 b1nance-vip.example and b1nance-vip.example")
    assert [m.rule for m in matches][0] == LOOKALIKE
    assert len(matches) == len({(m.platform, m.rule, m.found) for m in matches})


def test_an_empty_list_finds_nothing():
    assert Watchlist([]).match("b1nance-vip.example 币安") == ()


# -- the compiled list -------------------------------------------------------------------------


def test_helpers():
    assert skeleton("b1nance") == skeleton("binance") == skeleton("blnance")
    assert skeleton("0kx") == "okx"
    assert fold_host("xn--bnance-3va.com") == "binance.com"
    assert fold_host("ВINАNCE.com") == "binance.com"  # Cyrillic В and А


def test_the_bundled_list_is_the_default():
    names = {p.name for p in default_platforms()}
    assert {"Binance", "OKX", "Huobi", "Gate.io", "Poloniex"} <= names and len(names) == 22
    assert rules("b1nance.vip 火币") == rules("b1nance.vip 火币", default_watchlist())


def test_a_compiled_list_survives_pickling_for_worker_processes():
    LIST.match("b1nance-vip.example")  # fills the host cache
    copy = pickle.loads(pickle.dumps(LIST))
    assert copy._host_cache == {}  # the cache stays behind
    assert found("b1nance-vip.example", copy) == found("b1nance-vip.example")


def test_matching_does_not_grow_with_the_list():
    # The compiled maps hold every platform once; a post is matched by lookups, so a list of thousands
    # gives the same result for a post naming one of them as a list of one.
    many = [Platform(f"Exchange{i}", (f"exchange{i}.com",), (f"交易所{i}号",)) for i in range(3000)]
    big = Watchlist([*many, BINANCE])
    text = "b1nance-vip.example 交易所17号 exchange2999.com"
    assert rules(text, big) == {("Binance", LOOKALIKE), ("Exchange17", NAME), ("Exchange2999", DOMAIN)} | {
        ("Exchange2999", NAME)
    }


# -- hostile input ------------------------------------------------------------------------------

HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("binance.okx-0123456789 xn--.comvip币安火币\u200b．。/:@")),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_any_text_is_matched_without_error_and_only_to_listed_platforms(text):
    matches = LIST.match(text)
    assert {m.platform for m in matches} <= {p.name for p in LIST.platforms}
    assert LIST.match(text) == matches  # the host cache changes nothing


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=4), st.lists(st.text(max_size=30), max_size=4))
def test_any_list_compiles(domains, aliases):
    from classifier.platforms import PlatformError, clean_domain

    cleaned = []
    for domain in domains:
        try:
            cleaned.append(clean_domain(domain))
        except PlatformError:
            pass
    watchlist = Watchlist([Platform("X", tuple(cleaned), tuple(a for a in aliases if a.strip()))])
    watchlist.match(" ".join(domains + aliases))


def test_what_no_host_name_can_be_is_not_looked_at():
    # DNS labels are at most 63 characters and host names 253: longer runs are not hosts, and their
    # one-edit neighbourhoods would cost memory and time for nothing.
    assert [m.rule for m in LIST.match("mybinance" + "x" * 54 + ".com")] == [MIRROR]  # a 63-letter label
    assert LIST.match("mybinance" + "x" * 55 + ".com") == ()
    assert [m.rule for m in LIST.match("a." * 130 + "binance.vip")] == [NAME]  # 271 characters: only the word
