import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.platforms import Platform, PlatformError, clean_domain, default_platforms, read_platforms


def test_csv_with_a_header():
    text = "name,domains,aliases,note\nBinance,binance.com binance.us,币安 幣安,the big one\nOKX,okx.com,,\n"
    found, problems = read_platforms(text)
    assert problems == []
    assert found == [
        (2, Platform("Binance", ("binance.com", "binance.us"), ("币安", "幣安"), "the big one")),
        (3, Platform("OKX", ("okx.com",), (), "")),
    ]


def test_csv_columns_in_any_order_and_only_a_name():
    found, problems = read_platforms("note,NAME\nwarned 2024,Foo Exchange\n")
    assert problems == [] and found == [(2, Platform("Foo Exchange", note="warned 2024"))]


def test_jsonl_with_strings_or_lists():
    text = (
        '{"name": "Binance", "domains": ["https://www.Binance.com/en"], "aliases": "币安 B1nance"}\n'
        "\n"
        '{"name": "OKX", "domains": "okx.com okex.com", "note": "n"}\n'
    )
    found, problems = read_platforms(text)
    assert problems == []
    assert [p for _, p in found] == [
        Platform("Binance", ("binance.com",), ("币安", "B1nance")),
        Platform("OKX", ("okx.com", "okex.com"), (), "n"),
    ]
    assert [line for line, _ in found] == [1, 3]


def test_a_bad_row_is_named_by_its_line_and_the_rest_is_read():
    text = (
        "name,domains,aliases,note\n"
        "Binance,binance.com,,\n"
        ",nameless.com,,\n"
        "Bad Domain,not a domain!,,\n"
        "OKX,okx.com,,\n"
        "binance,binance.org,,\n"
        "Too,many,cells,here,and more\n"
    )
    found, problems = read_platforms(text)
    assert [p.name for _, p in found] == ["Binance", "OKX"]
    assert [str(p) for p in problems] == [
        "line 3: name is missing or empty",
        "line 4: 'not' is not a domain (expected something like example.com)",
        "line 6: 'binance' is already given on line 2",
        "line 7: 5 cells for 4 columns",
    ]


def test_bad_jsonl_lines():
    text = '{"name": "A"}\nnot json\n[1, 2]\n{"name": "B", "domains": 5}\n{"name": "C", "note": 3}\n'
    found, problems = read_platforms(text)
    assert [p.name for _, p in found] == ["A"]
    assert [p.line for p in problems] == [2, 3, 4, 5]
    assert "domains must be text" in problems[2].message


def test_a_header_without_name_is_one_problem():
    found, problems = read_platforms("platform,domains\nBinance,binance.com\n")
    assert found == [] and len(problems) == 1 and "no 'name' column" in problems[0].message


def test_an_empty_file_has_nothing():
    assert read_platforms("") == ([], [])


@pytest.mark.parametrize(
    "value, domain",
    [
        ("Binance.COM", "binance.com"),
        ("https://www.binance.com/en/register?ref=1", "binance.com"),
        ("binance.com.", "binance.com"),
        ("bínance.com", "bínance.com"),
        ("gate.io:443", "gate.io"),
    ],
)
def test_domains_are_cleaned(value, domain):
    assert clean_domain(value) == domain


@pytest.mark.parametrize("value", ["binance", "", "bin ance.com", "1.2.3.4", "-x.com", "[", "http://[::1"])
def test_what_is_not_a_domain(value):
    with pytest.raises(PlatformError):
        clean_domain(value)


def test_the_bundled_list_reads_cleanly():
    platforms = default_platforms()
    assert len(platforms) == 22
    assert all(p.domains for p in platforms)
    assert next(p for p in platforms if p.name == "Huobi").aliases == ("火币", "火幣", "htx")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.builds(lambda body: "name,domains,aliases,note\n" + body, st.text())))
def test_any_file_text_reads_without_error(text):
    found, problems = read_platforms(text)
    assert all(isinstance(p, Platform) and p.name for _, p in found)
    assert all(p.line >= 1 and p.message for p in problems)
