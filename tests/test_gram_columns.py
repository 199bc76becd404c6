from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer

from classifier.gram_columns import GramColumns

VOCABULARY_TEXT = "收u 汇率 担保 binance ref code 0x12ab 🚀 moon signal 做多 止损 a ab"
words = st.text(alphabet="收u汇率担保binacerfod0x12🚀ms做多止损 \tZ€", min_size=1, max_size=40).map(str.split)


def fitted(min_n: int, max_n: int) -> dict[str, int]:
    return (
        CountVectorizer(analyzer="char_wb", ngram_range=(min_n, max_n), lowercase=False)
        .fit([VOCABULARY_TEXT])
        .vocabulary_
    )


def expected_columns(vocabulary: dict[str, int], word: str, min_n: int, max_n: int) -> Counter:
    analyse = CountVectorizer(analyzer="char_wb", ngram_range=(min_n, max_n), lowercase=False).build_analyzer()
    return Counter(vocabulary[g] for g in analyse(word) if g in vocabulary)


@pytest.mark.parametrize("min_n, max_n", [(1, 4), (1, 1), (2, 3), (3, 5)])
@settings(max_examples=60, deadline=None)
@given(words=words)
def test_each_word_gets_the_columns_scikit_learn_counts(min_n, max_n, words):
    """Characters outside the vocabulary's alphabet (Z, €, tabs never reach it) and n-grams it lacks match nothing;
    each word's columns are its own, whatever words stand beside it."""
    vocabulary = fitted(min_n, max_n)
    lookup = GramColumns(vocabulary, min_n, max_n)
    assert lookup.usable
    columns, per_word = lookup.of_words(words)
    assert per_word.sum() == len(columns) and len(per_word) == len(words)
    for word, mine in zip(words, np.split(columns, np.cumsum(per_word)[:-1])):
        assert Counter(mine.tolist()) == expected_columns(vocabulary, word, min_n, max_n)


def test_no_words_no_columns():
    columns, per_word = GramColumns(fitted(1, 4), 1, 4).of_words([])
    assert len(columns) == 0 and len(per_word) == 0


def test_a_vocabulary_too_wide_to_pack_in_64_bits_says_so():
    """Five characters of an alphabet of 5,000 need 65 bits: the caller keeps its dict lookups."""
    alphabet = [chr(0x4E00 + i) for i in range(5000)]
    assert not GramColumns({c: i for i, c in enumerate(alphabet)}, 1, 5).usable
    assert GramColumns({c: i for i, c in enumerate(alphabet)}, 1, 4).usable


def test_padded_words_shorter_than_min_n_are_left_to_scikit_learns_rule():
    """scikit-learn counts a padded word shorter than min_n whole; a padded word has at least three characters."""
    assert not GramColumns(fitted(4, 5), 4, 5).usable


def test_words_looked_up_a_slice_at_a_time_get_the_same_columns(monkeypatch):
    from classifier import gram_columns

    lookup = GramColumns(fitted(1, 4), 1, 4)
    words = VOCABULARY_TEXT.split() * 7
    whole = lookup.of_words(words)
    monkeypatch.setattr(gram_columns, "SLICE_CHARS", 10)
    sliced = lookup.of_words(words)
    assert np.array_equal(whole[0], sliced[0]) and np.array_equal(whole[1], sliced[1])
