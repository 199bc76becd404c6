"""Vocabulary columns of many words' character n-grams at once, looked up as numbers in numpy.

:class:`classifier.model.WordCachedCharNgrams` analyses each distinct word once and caches its columns, but
words too long to come back miss that cache every time: Chinese clauses, which have no spaces, and links.
Building their n-grams as Python strings and looking each up in the vocabulary's dict cost 330 ns a gram,
400 ms of a 3.4 s batch of 20,000 corpus posts. Here each n-gram is a number instead (its characters' places
in the vocabulary's alphabet, packed into 64 bits), found by binary search among the vocabulary's own numbers:
the same columns, in another order, which the count matrix's summing does not see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# Characters looked up at once: each takes about 150 bytes of temporary arrays, so the 300,000 characters
# a batch of 20,000 posts misses would take 45 MB at once; a slice of 65,536 takes 10.
SLICE_CHARS = 65_536
# Between words: a character no n-gram holds (words come from str.split(), so none holds a line break).
_GAP = "\n"
_PAD = "\0"  # after an n-gram shorter than the longest, in the vocabulary's own packing


class GramColumns:
    """Columns of the ``char_wb`` n-grams (lengths ``min_n`` to ``max_n``) of words, for one vocabulary."""

    def __init__(self, vocabulary: Mapping[str, int], min_n: int, max_n: int):
        self.max_n = max_n
        alphabet = sorted(set("".join(vocabulary)))
        self.code_points = np.array([ord(c) for c in alphabet], dtype=np.int64)
        # Places 1..len(alphabet); 0 would pack like a shorter n-gram, so an unknown character gets its own.
        self.unknown = len(alphabet) + 1
        self.bits = self.unknown.bit_length()
        # A padded word is at least three characters long, so below that every n-gram is an ordinary one
        # (scikit-learn counts a padded word shorter than min_n whole, once).
        self.usable = self.bits * max_n <= 63 and min_n <= 3 and _GAP not in alphabet and _PAD not in alphabet
        if not self.usable:
            return
        self.lengths = range(min_n, max_n + 1)
        # Every n-gram padded to max_n characters; the padding, the only character outside the alphabet
        # here, packs as 0, like the characters a shorter n-gram does not have.
        places = self._places("".join(gram.ljust(max_n, _PAD) for gram in vocabulary)).reshape(-1, max_n)
        places[places == self.unknown] = 0
        keys = sum(places[:, k] << (self.bits * k) for k in range(max_n))
        columns = np.fromiter(vocabulary.values(), dtype=np.int32, count=len(vocabulary))
        order = np.argsort(keys)
        self.keys, self.columns = keys[order], columns[order]

    def _places(self, text: str) -> np.ndarray:
        """Each character's place in the alphabet, or ``self.unknown``."""
        code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        places = np.searchsorted(self.code_points, code_points)
        np.minimum(places, len(self.code_points) - 1, out=places)
        return np.where(self.code_points[places] == code_points, places + 1, self.unknown)

    def of_words(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The columns of every n-gram of the words that the vocabulary holds, word after word, and how many
        each word has. Words are padded with a space each side, as ``char_wb`` pads them."""
        columns, per_word, start, size = [], [], 0, 0
        for end, word in enumerate(words, 1):
            size += len(word) + 3
            if size >= SLICE_CHARS or end == len(words):
                found, counts = self._of_slice(words[start:end])
                columns.append(found)
                per_word.append(counts)
                start, size = end, 0
        if not columns:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
        return np.concatenate(columns), np.concatenate(per_word)

    def _of_slice(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        text = "".join(f" {word} {_GAP}" for word in words) + _GAP * self.max_n
        places = self._places(text)
        size = len(places)
        # key[i] packs the n-gram of length n starting at i; one column per length, one row per start, so
        # that the n-grams found come out in the order of their starts, and so word after word. An n-gram
        # that would run across a gap or past the end holds an unknown character and matches nothing.
        key = np.zeros(size, dtype=np.int64)
        keys = np.empty((size, len(self.lengths)), dtype=np.int64)
        for n in range(1, self.max_n + 1):
            key[: size - n + 1] |= places[n - 1 :] << (self.bits * (n - 1))
            if n in self.lengths:
                keys[:, n - self.lengths.start] = key
        flat = keys.ravel()
        # Searched in sorted order, each search starts where the last ended and stays in cache: sorting and
        # searching took half as long as searching in the order of the text.
        order = np.argsort(flat)
        at = np.empty_like(order)
        at[order] = np.searchsorted(self.keys, flat[order])
        np.minimum(at, len(self.keys) - 1, out=at)
        found = np.flatnonzero(self.keys[at] == flat)
        word_of_start = np.repeat(np.arange(len(words)), [len(word) + 3 for word in words])
        per_word = np.bincount(word_of_start[found // len(self.lengths)], minlength=len(words))
        return self.columns[at[found]], per_word
