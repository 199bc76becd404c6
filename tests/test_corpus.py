import re

import pytest

from classifier.corpus import (
    BUNDLED_DATA_DIR,
    COVERAGE_MARKERS,
    README_MARKERS,
    counts_table,
    coverage_gaps,
    coverage_table,
    guess_language,
    load_corpus,
    near_duplicates,
    readme_with_counts,
)
from classifier.genres import GENRES, REGISTERS


@pytest.fixture(scope="module")
def bundled():
    problems = []
    posts = load_corpus([BUNDLED_DATA_DIR], problems)
    assert problems == []
    return posts


def test_bundled_corpus_meets_the_minimums(bundled):
    assert len(bundled) >= 9000
    assert sum(p.lang == "zh" for p in bundled) / len(bundled) >= 0.40
    for label in ("ico", "trading_service", "benign"):
        assert sum(p.label == label for p in bundled) >= 2000
    assert sum(p.hard for p in bundled) >= 1500


def test_every_post_has_a_genre_and_register_and_every_cell_of_the_wild_is_covered(bundled):
    assert all(p.genre in GENRES and p.register in REGISTERS for p in bundled)
    assert coverage_gaps(bundled) == []


def test_held_out_posts_are_never_read_as_training_data(bundled):
    held_out = load_corpus([BUNDLED_DATA_DIR / "held_out"])
    assert len(held_out) >= 200
    assert not {p.text for p in held_out} & {p.text for p in bundled}


def test_near_duplicates_stay_under_two_percent(bundled):
    twins = near_duplicates([p.text for p in bundled])
    assert len(twins) / len(bundled) <= 0.02, f"{len(twins)} posts have a near-twin"


def test_corpus_readme_tables_are_true(bundled):
    readme = (BUNDLED_DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert readme_with_counts(readme, counts_table(bundled)) == readme, (
        "run: python -m classifier.corpus --update-readme"
    )
    assert readme_with_counts(readme, coverage_table(bundled), COVERAGE_MARKERS) == readme, (
        "run: python -m classifier.corpus --update-readme"
    )
    assert README_MARKERS[0] in readme and COVERAGE_MARKERS[0] in readme


def test_coverage_names_thin_cells_and_untagged_posts():
    from classifier.corpus import LabelledPost

    posts = [LabelledPost(f"presale {i}", "ico", "en", genre="token_sale", register="x_post") for i in range(30)]
    posts += [
        LabelledPost("收U", "trading_service", "zh"),
        LabelledPost("airdrop", "ico", "en", genre="airdrop", register="x_post"),
    ]
    gaps = coverage_gaps(posts)
    assert "1 posts have no genre or register" in gaps
    assert "token_sale / x_post: 30 English posts, need 30" not in " ".join(gaps)
    assert "airdrop / x_post: 1 English posts, need 30" in gaps
    assert "token_sale / channel_post: no Chinese post" in gaps
    table = coverage_table(posts)
    assert "| `ico` | `token_sale` | 0! / 0 | 0! / 0 | 30 / 0 |" in table


def test_near_duplicates_are_found_exactly():
    texts = [
        "Presale stage 2 is live, 1 BNB = 52,000 KRILL, buy at krill.example",
        "Presale stage 2 is live, 1 BNB = 52,000 KRILL, buy at krill.example!",
        "Presale stage 3 opens Friday with a new price for everyone who waited",
        "gm",
        "gm ",
        "长期收U，汇率置顶，见U打款",
    ]
    assert near_duplicates(texts) == {0: 1, 1: 0, 3: 4, 4: 3}
    assert near_duplicates(texts[:2], threshold=0.99) == {}


def test_unknown_genre_or_register_is_named_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "a", "label": "ico", "genre": "airdrop", "register": "x_post"}\n'
        '{"text": "b", "label": "ico", "genre": "rugpull"}\n'
        '{"text": "c", "label": "ico", "register": "tiktok"}\n'
        '{"text": "d", "label": "benign", "genre": "airdrop"}\n',
        encoding="utf-8",
    )
    problems = []
    posts = load_corpus([bad], problems)
    assert [(p.text, p.genre, p.register) for p in posts] == [("a", "airdrop", "x_post")]
    messages = [str(p) for p in problems]
    assert messages[0].startswith(f"{bad}:2: unknown \"genre\" 'rugpull'")
    assert messages[1].startswith(f"{bad}:3: unknown \"register\" 'tiktok'")
    assert messages[2] == f"{bad}:4: \"genre\" 'airdrop' belongs to label 'ico', not 'benign'"


def test_duplicate_texts_keep_the_last_label(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"text": "same", "label": "ico"}\n{"text": "other", "label": "benign"}\n')
    b.write_text('{"text": "same", "label": "benign"}\n')
    posts = load_corpus([a, b])
    assert {p.text: p.label for p in posts} == {"same": "benign", "other": "benign"}


def test_missing_paths_and_bad_lines_are_problems_not_crashes(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "ok", "label": "ico"}\n\xff\xfe garbage\n{"text": "x", "label": "ICO"}\n')
    problems = []
    posts = load_corpus([bad, tmp_path / "missing.jsonl", tmp_path / "empty_dir"], problems)
    assert [p.text for p in posts] == ["ok"]
    messages = [str(p) for p in problems]
    assert any("bad.jsonl:2: not valid JSON" in m for m in messages)
    assert any('bad.jsonl:3: "label" must be one of' in m for m in messages)
    assert any("missing.jsonl" in m and "not found" in m for m in messages)


def test_language_is_guessed_when_absent():
    assert guess_language("长期收U，汇率置顶") == "zh"
    assert guess_language("Presale live now 空投") == "en"


def test_invented_example_domains_are_read_under_real_suffixes():
    from classifier.corpus import REAL_SUFFIXES, with_real_suffixes

    text = "Claim at https://nova-drop.example/claim or mirror nova-app.EXAMPLE, docs on gitbook.io"
    once = with_real_suffixes(text)
    assert once == with_real_suffixes(text)  # the same post reads the same in every run and every tool
    assert ".example" not in once.lower() and "gitbook.io" in once
    suffixes = re.findall(r"nova-(?:drop|app)\.(\w+)", once)
    assert len(suffixes) == 2 and set(suffixes) <= set(REAL_SUFFIXES)
    assert with_real_suffixes("no invented domain here: binance.com") == "no invented domain here: binance.com"
    assert not any(".example" in post.text.lower() for post in load_corpus([BUNDLED_DATA_DIR]))
