from classifier.corpus import (
    BUNDLED_DATA_DIR, README_MARKERS, counts_table, guess_language, load_corpus, readme_with_counts,
)


def test_bundled_corpus_meets_the_minimums():
    problems = []
    posts = load_corpus([BUNDLED_DATA_DIR], problems)
    assert problems == []
    assert len(posts) >= 2000
    assert sum(p.lang == "zh" for p in posts) / len(posts) >= 0.40
    for label in ("ico", "trading_service", "benign"):
        assert sum(p.label == label for p in posts) >= 400
    assert sum(p.hard for p in posts) >= 500


def test_corpus_readme_counts_are_true():
    readme = (BUNDLED_DATA_DIR / "README.md").read_text(encoding="utf-8")
    table = counts_table(load_corpus([BUNDLED_DATA_DIR]))
    assert readme_with_counts(readme, table) == readme, "run: python -m classifier.corpus --update-readme"
    assert README_MARKERS[0] in readme


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
    assert any("bad.jsonl:3: \"label\" must be one of" in m for m in messages)
    assert any("missing.jsonl" in m and "not found" in m for m in messages)


def test_language_is_guessed_when_absent():
    assert guess_language("长期收U，汇率置顶") == "zh"
    assert guess_language("Presale live now 空投") == "en"
