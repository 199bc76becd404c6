"""Disguised promotion: the evasion set of benchmarks/evasion_benchmark.py, on a small sample, with the session model."""

from __future__ import annotations

import pytest

from benchmarks.evasion_benchmark import (
    button_message,
    caption_message,
    disguises,
    measure,
    table,
    text_link_message,
    through_ingest,
)
from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
from classifier.labels import PROMOTION_LABELS
from classifier.normalize import normalize
from classifier.train import in_heldout

SAMPLE = 60


@pytest.fixture(scope="module")
def promotional_sample():
    """Promotional posts of the held-out split, both labels and both languages, in a stable order."""
    posts = [p for p in load_corpus([BUNDLED_DATA_DIR]) if p.label in PROMOTION_LABELS and in_heldout(p.text)]
    return [p.text for p in posts[:: max(1, len(posts) // SAMPLE)]][:SAMPLE]


def test_every_disguise_keeps_at_least_90_percent_of_the_plain_detection_rate(trained_model, promotional_sample):
    rows = measure(trained_model, promotional_sample)
    plain = rows[0]
    assert plain.rate >= 0.9, table(rows)
    for row in (r for r in rows[1:] if r.target):
        assert row.rate / plain.rate >= 0.9, f"{row.name} evades:\n{table(rows)}"
    # The text disguises really changed the posts: the set is not the plain set again.
    changed = {r.name: r.changed for r in rows}
    # Full-width forms exist for ASCII only: a post all in Chinese with Chinese punctuation stays as it is.
    with_ascii = sum(any("!" <= ch <= "~" or ch == " " for ch in text) for text in promotional_sample)
    assert changed["homoglyphs"] >= SAMPLE * 0.8 and changed["full-width"] == with_ascii >= SAMPLE * 0.9
    assert changed["zero-width"] >= SAMPLE * 0.5 and changed["URL buttons"] > 0


def test_disguises_normalize_back_to_the_plain_words():
    text = "Presale live: join now"
    for d in disguises():
        if d.name in ("homoglyphs", "zero-width", "spaced letters", "full-width", "emoji between letters", "combined"):
            assert "presale" in normalize(d.apply(text)), d.name


def test_message_disguises_go_through_the_live_ingest_path():
    text = "Presale ends Friday, buy at moon-sale.example/buy"
    assert through_ingest(caption_message)(text) == text
    hidden = through_ingest(text_link_message)(text)
    assert hidden == "Presale ends Friday, buy at here\nhttps://moon-sale.example/buy"
    assert through_ingest(button_message)(text).endswith("\n👉 Open https://moon-sale.example/buy")
    assert "moon-sale" not in text_link_message(text)["text"] and "moon-sale" not in button_message(text)["text"]
