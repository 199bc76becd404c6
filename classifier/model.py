"""The promotion classifier: a scikit-learn Pipeline plus per-label thresholds and explanations.

Character n-grams read Chinese without a segmenter and survive typos; word n-grams carry English
phrases; the evidence features carry what regular expressions find (links, exchanges, referral codes,
addresses, OTC slang, trading calls, phone numbers, testimonials given with a contact). A linear SVM over all three, calibrated with Platt scaling
(:class:`BlendedCalibration`), gives probabilities; per-label thresholds tuned on leave-one-register-out
predictions turn them into a label.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from itertools import chain, count, islice, repeat
from numbers import Integral
from operator import attrgetter
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classifier import passages
from classifier.evidence import Evidence, extract
from classifier.gram_columns import GramColumns
from classifier.labels import BENIGN, LABELS, PROMOTION_LABELS, TRADING_SERVICE
from classifier.language import detect_language, is_covered
from classifier.normalize import MAX_CHARS, clean, fold
from classifier.scoring import Contributions, LinearScorer, blend_benign, rows_matrix
from classifier.verdict import Reason, Verdict, language_reason, passage_reason, watchlist_reason
from classifier.watchlist import Watchlist, default_watchlist

DEFAULT_THRESHOLDS = {label: 0.5 for label in PROMOTION_LABELS}
MIN_REASON_WEIGHT = 0.01  # contributions below this explain nothing a moderator can use
# Batches this large pause the cyclic garbage collector (see _CollectorPause). The bot's batches (a few
# getUpdates, at most 256 posts) do not: they run in a thread beside the event loop, whose own garbage
# would wait for them, and a batch that small gains little from the pause.
PAUSE_COLLECTOR_FROM = 500


class PreparedPost(NamedTuple):
    normalized: str
    evidence: Evidence
    language: str
    # A long post's passages (classifier.passages), as text: prepared only if the post needs reading by them.
    passages: tuple[str, ...] = ()


def _prepare(text: str, language: str | None = None, passages: tuple[str, ...] = ()) -> PreparedPost:
    cleaned = clean(text)
    normalized = fold(cleaned)
    evidence = extract(text, cleaned=cleaned, normalized=normalized)
    return PreparedPost(normalized, evidence, language or detect_language(cleaned), passages)


def prepare(text: str) -> PreparedPost:
    """Clean once, then derive the n-gram text, the evidence and the language from it; cut a long post
    into its passages."""
    text = text[:MAX_CHARS]
    return _prepare(text, passages=passages.split(text))


def prepare_many(texts: Sequence[str]) -> list[PreparedPost]:
    return [prepare(t) for t in texts]


def prepared_posts(posts: Sequence, prepared: Sequence[PreparedPost] | None = None) -> Sequence[PreparedPost]:
    """``prepared`` when the caller already has the posts prepared, else the posts' texts prepared now."""
    return prepare_many([p.text for p in posts]) if prepared is None else prepared


def passages_to_read(
    prepared: Sequence[PreparedPost], probabilities: np.ndarray, classes: Sequence[str]
) -> tuple[list[PreparedPost], np.ndarray]:
    """The passages of the posts that need them (:func:`classifier.passages.to_read`), prepared (the
    language is their post's: nothing reads it but the reasons, which are the post's), and for each the
    row of its post."""
    counts = [len(post.passages) for post in prepared]
    needed = passages.to_read(np.array(counts), probabilities, classes)
    rows = [_prepare(text, prepared[i].language) for i in needed for text in prepared[i].passages]
    return rows, np.repeat(needed, [counts[i] for i in needed])


def probabilities_with_passages(prepared: Sequence[PreparedPost], predict_proba, classes) -> np.ndarray:
    """The posts' probabilities (``predict_proba`` of prepared posts), each long post's promotion labels
    raised by its passages (:func:`classifier.passages.combine`)."""
    whole = predict_proba(list(prepared))
    rows, owner = passages_to_read(prepared, whole, classes)
    if not rows:
        return whole
    return passages.combine(whole, classes, predict_proba(rows), owner)


def char_wb_ngrams(word: str, min_n: int, max_n: int) -> list[str]:
    """The n-grams scikit-learn's ``char_wb`` analyzer makes of one word (padded with a space each
    side; a padded word no longer than n is counted once, whole), built with list comprehensions."""
    padded = f" {word} "
    length = len(padded)
    grams: list[str] = []
    for n in range(min_n, max_n + 1):
        if length <= n:
            grams.append(padded)
            break
        grams += [padded[i : i + n] for i in range(length - n + 1)]
    return grams


class WordCachedCharNgrams(TransformerMixin, BaseEstimator):
    """Character n-grams within word boundaries (scikit-learn's ``char_wb``), tf-idf weighted.

    The counts are exactly those of ``CountVectorizer(analyzer="char_wb")``, whose n-grams never cross a
    space: a post's n-grams are the union of its words' n-grams. So each distinct word is analysed once
    and its vocabulary indices cached; posts repeat words, and building n-gram strings in Python is what
    made the plain vectorizer the slowest step by far.
    """

    # About 290 bytes a word: 100,000 words hold a channel's everyday vocabulary in about 29 MB, so memory
    # stays flat over a long scan (300,000 let it grow by 80 MB). It was 50,000 until the corpus's own
    # words (up to 24 letters, normalised) passed that (53,200 in 16,361 posts): a stream that reuses more
    # words than the cache holds misses on most of them, and the corpus cycled fell from parity with the
    # benchmark's reference to x0.8 (benchmarks/README.md).
    CACHE_LIMIT = 100_000
    CACHEABLE_LENGTH = 24
    NUMPY_FROM_CHARS = 100  # missed characters; fewer cost less in the dict than numpy's set-up (even at ~60)

    def __init__(self, ngram_range=(1, 4), min_df=2, max_df=0.9):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df

    def fit(self, posts, y=None):
        self._fit(posts)
        return self

    def fit_transform(self, posts, y=None):
        """``fit(posts).transform(posts)`` from the count matrix the fit has already built: counting every
        training post again took a sixth of each of training's fits."""
        counts = self._fit(posts)
        return self.tfidf_.transform(counts).astype(np.float32)

    def _fit(self, posts) -> sp.csr_matrix:
        self.counter_ = CountVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            min_df=self.min_df,
            max_df=self.max_df,
            lowercase=False,
            dtype=np.float32,
        )
        counts = self._fit_vocabulary([p.normalized for p in posts])
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        self._cache = {}
        self._gram_columns = None
        return counts

    def _fit_vocabulary(self, texts: list[str]) -> sp.csr_matrix:
        """Give ``counter_`` the vocabulary its own ``fit`` would find (the same n-grams, document-frequency
        limits and order) and return the count matrix over it, analysing each distinct word once: training
        fits a model per fold and per left-out group, and the plain fit was a quarter of each."""
        documents = [text.split() for text in texts]
        grams_of: dict[str, list[str]] = {}
        for words in documents:
            for word in words:
                if word not in grams_of:
                    grams_of[word] = char_wb_ngrams(word, *self.ngram_range)
        # Every n-gram met, numbered in order of meeting; dict and map do the work in C.
        ids = dict(zip(dict.fromkeys(chain.from_iterable(grams_of.values())), count()))
        of_word = {w: np.fromiter(map(ids.__getitem__, g), dtype=np.int64, count=len(g)) for w, g in grams_of.items()}
        pieces = [of_word[w] for words in documents for w in words]
        per_doc = [sum(len(of_word[w]) for w in words) for words in documents]
        indices = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        counts = rows_matrix(per_doc, indices, len(ids))
        document_frequency = np.bincount(counts.indices, minlength=len(ids))
        high = self.max_df if isinstance(self.max_df, Integral) else self.max_df * len(texts)
        low = self.min_df if isinstance(self.min_df, Integral) else self.min_df * len(texts)
        kept = (document_frequency <= high) & (document_frequency >= low)
        if not kept.any():
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        terms = sorted(gram for gram, i in ids.items() if kept[i])
        new_index = np.full(len(ids), -1, dtype=np.int64)
        new_index[[ids[t] for t in terms]] = np.arange(len(terms))
        self.counter_.vocabulary_ = {term: i for i, term in enumerate(terms)}
        self.counter_.fixed_vocabulary_ = False
        columns = new_index[counts.indices]
        rows = np.repeat(np.arange(len(texts)), np.diff(counts.indptr))
        stay = columns >= 0
        per_doc = np.bincount(rows[stay], minlength=len(texts))
        return rows_matrix(per_doc, columns[stay].astype(np.int32), len(terms), data=counts.data[stay])

    def _analyse(self, words: list[str]) -> dict[str, np.ndarray]:
        """Vocabulary indices of the n-grams of words the cache lacks, each word's array; the cacheable ones
        cached. Many characters at once go through numpy (:mod:`classifier.gram_columns`), a few through
        the vocabulary's dict, which costs less than numpy's set-up for one short word."""
        if sum(map(len, words)) < self.NUMPY_FROM_CHARS or not self._columns().usable:
            return {word: self._word_indices(word) for word in words}
        columns, per_word = self._columns().of_words(words)
        found = dict(zip(words, np.split(columns, np.cumsum(per_word)[:-1])))
        for word, indices in found.items():
            if len(word) <= self.CACHEABLE_LENGTH:
                # A copy: a view would keep the whole batch's array alive as long as the word stays cached.
                self._remember(word, indices.copy())
        return found

    def _columns(self) -> GramColumns:
        # Made on first use, not saved with the model: it is the vocabulary in another form. The first batch
        # after loading pays for it once (about 0.1 s). Two threads may both make it; either result is the same.
        if self._gram_columns is None:
            self._gram_columns = GramColumns(self.counter_.vocabulary_, *self.ngram_range)
        return self._gram_columns

    def _word_indices(self, word: str) -> np.ndarray:
        """Vocabulary indices of one word's n-grams (a miss of the cache)."""
        vocabulary = self.counter_.vocabulary_
        grams = char_wb_ngrams(word, *self.ngram_range)
        # map with a default and a numpy mask: a comprehension testing each lookup was twice as slow.
        found = np.fromiter(map(vocabulary.get, grams, repeat(-1)), dtype=np.int32, count=len(grams))
        indices = found[found >= 0]
        if len(word) <= self.CACHEABLE_LENGTH:  # long tokens (URLs, Chinese clauses) rarely come back
            self._remember(word, indices)
        return indices

    def _remember(self, word: str, indices: np.ndarray) -> None:
        if len(self._cache) >= self.CACHE_LIMIT:
            self._forget_oldest_half()
        self._cache[word] = indices

    def _forget_oldest_half(self) -> None:
        """Drop the half cached longest ago, not all: the recent half stays for the next posts."""
        # list() of the islice runs in C, so no other thread's insertion can interleave with the iteration.
        for word in list(islice(self._cache, len(self._cache) // 2)):
            self._cache.pop(word, None)

    def counts(self, posts) -> sp.csr_matrix:
        """The n-gram count matrix, equal to ``self.counter_.transform`` of the normalized texts."""
        pieces, lengths = [], []
        cache = self._cache
        texts = [post.normalized.split() for post in posts]
        # In order of first use, so that the words cached last are this batch's last.
        missed = self._analyse([w for w in dict.fromkeys(chain.from_iterable(texts)) if w not in cache])

        def miss(word: str) -> np.ndarray:
            found = missed.get(word)
            # Another thread's batch may have evicted a word that was cached when this batch began.
            return self._word_indices(word) if found is None else found

        for words in texts:
            # get, not "in" then index: another thread's batch may clear the cache between the two.
            words = [miss(w) if (found := cache.get(w)) is None else found for w in words]
            lengths.append(sum(map(len, words)))
            pieces.extend(words)
        indices = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        return rows_matrix(lengths, indices, len(self.counter_.vocabulary_))

    def transform(self, posts):
        return self.tfidf_.transform(self.counts(posts)).astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        return self.counter_.get_feature_names_out()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = {}
        state.pop("_gram_columns", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._gram_columns = None


class EvidenceVectorizer(TransformerMixin, BaseEstimator):
    """Turns each post's :class:`Evidence` into named numeric features."""

    def fit(self, posts, y=None):
        self.vectorizer_ = DictVectorizer(dtype=np.float32).fit(p.evidence.features() for p in posts)
        return self

    def transform(self, posts):
        """``DictVectorizer.transform`` of the features. Evidence features are numbers, so the lookups need
        none of its checks for strings and iterables (0.052 → 0.043 s on 20,000 posts)."""
        vocabulary = self.vectorizer_.vocabulary_
        lengths, found = [], []
        for post in posts:
            known = [
                (vocabulary[name], value) for name, value in post.evidence.features().items() if name in vocabulary
            ]
            lengths.append(len(known))
            found += known
        columns = np.array([column for column, _ in found], dtype=np.int32)
        return rows_matrix(lengths, columns, len(vocabulary), data=[value for _, value in found])

    def get_feature_names_out(self, input_features=None):
        return self.vectorizer_.get_feature_names_out()


class BlendedCalibration(CalibratedClassifierCV):
    """Platt-calibrated one-versus-rest SVM whose P(benign) is blended (``benign_weight``) from the normalised
    probability and the benign-versus-rest sigmoid's own (:func:`classifier.scoring.blend_benign`).

    Normalising three sigmoids reads promotion of an unseen kind as benign: both promotion sigmoids are low,
    so benign gets most of the mass even when its own sigmoid is low too. On the 14,241-post corpus, at equal
    false positives on benign posts, the blend at 0.5 caught 1.5–2.6 points more promotion of a genre left
    out of training (0.738 against 0.719 at 20%) and 0.3–0.6 more of a register left out (0.958 against
    0.955 at 8%); weights 0.25 and 0.75 did as well out of genre but less out of register, 1.0 worse out
    of register than no blend. No extra fit: it reuses the calibration's sigmoids."""

    def __init__(self, estimator=None, *, method="sigmoid", cv=None, n_jobs=None, ensemble="auto", benign_weight=0.5):
        super().__init__(estimator, method=method, cv=cv, n_jobs=n_jobs, ensemble=ensemble)
        self.benign_weight = benign_weight

    def predict_proba(self, X):
        probabilities = super().predict_proba(X)
        classes = list(self.classes_)
        if len(classes) < 3 or BENIGN not in classes or self.method != "sigmoid":
            return probabilities  # two classes are not normalised; other methods have no one sigmoid per class
        benign = classes.index(BENIGN)
        sigmoids = [
            calibrated.calibrators[benign].predict(calibrated.estimator.decision_function(X)[:, benign])
            for calibrated in self.calibrated_classifiers_
        ]
        return blend_benign(probabilities, np.mean(sigmoids, axis=0), benign, self.benign_weight)


def _svm(C: float):
    # tol 1e-3 instead of 1e-4: each SVM fit a quarter faster (training fits 56 of them), the figures the
    # same within noise (on the 14,241-post corpus, at thresholds 0.40: out of register macro-F1 0.9365
    # against 0.9378, out of genre 0.7038 against 0.7028).
    svm = LinearSVC(C=C, class_weight="balanced", tol=1e-3, random_state=0)  # random_state: reproducible figures
    # ensemble=False: one SVM fitted on all the data, so its weights explain every verdict.
    return BlendedCalibration(svm, method="sigmoid", cv=3, ensemble=False)


def _logreg(C: float):
    return LogisticRegression(C=C * 20, class_weight="balanced", max_iter=2000, random_state=0)


# The model families a pipeline can end in: the calibrated linear SVM the product uses, and multinomial
# logistic regression, measured against it by ``python -m classifier.generalisation --family``.
FAMILIES = {"svm": _svm, "logreg": _logreg}


# C was chosen by leave-one-register-out and leave-one-genre-out macro-F1 (README): C 0.25 / 0.5 / 1.0 gave
# 0.917 / 0.926 / 0.930 out of register. Word bigrams: 0.930 with and without out of register, but 0.716
# against 0.707 out of genre, so they stay.
DEFAULT_C = 1.0


def build_pipeline(C: float = DEFAULT_C, family: str = "svm") -> Pipeline:
    text_of = attrgetter("normalized")
    features = FeatureUnion(
        [
            ("chars", WordCachedCharNgrams(ngram_range=(1, 4), min_df=2, max_df=0.9)),
            (
                "words",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    min_df=2,
                    max_df=0.9,
                    sublinear_tf=True,
                    preprocessor=text_of,
                    dtype=np.float32,
                    token_pattern=r"[$#@]?[^\W\d_][\w']+|\d+%?",
                ),
            ),
            ("evidence", EvidenceVectorizer()),
        ]
    )
    return Pipeline(
        [
            ("prepare", FunctionTransformer(prepare_many)),
            ("features", features),
            ("model", FAMILIES[family](C)),
        ]
    )


def fit_prepared(pipeline: Pipeline, prepared: Sequence[PreparedPost], labels) -> Pipeline:
    """Fit a :func:`build_pipeline` pipeline on posts already prepared (:func:`prepare_many`). Training fits
    a pipeline per fold, per left-out group and for the gate; preparing every post once for all of them
    saves a seventh of each fit. The ``prepare`` step holds no state, so the whole pipeline is fitted and
    takes texts; ``pipeline[1:]`` takes prepared posts."""
    pipeline[1:].fit(prepared, labels)
    return pipeline


def decide(probabilities: np.ndarray, classes: Sequence[str], thresholds: dict[str, float]) -> list[str]:
    """Per-label thresholds: a promotion label wins when its probability reaches its threshold; of two
    that do, the one furthest past its threshold. Otherwise the post is benign."""
    index = {label: i for i, label in enumerate(classes)}
    promo = [label for label in PROMOTION_LABELS if label in index]
    ratios = np.column_stack([probabilities[:, index[label]] / thresholds[label] for label in promo])
    best = ratios.argmax(axis=1)
    return [promo[b] if ratios[row, b] >= 1.0 else BENIGN for row, b in enumerate(best)]


class PromotionClassifier:
    """A fitted pipeline, the thresholds that turn its probabilities into labels, and its version."""

    def __init__(self, pipeline: Pipeline, thresholds: dict[str, float] | None = None, version: str = ""):
        self.pipeline = pipeline
        self.thresholds = dict(thresholds or DEFAULT_THRESHOLDS)
        self.version = version
        self.manifest: dict = {}
        self._scorer: LinearScorer | None = None
        self._names: list[tuple[str, str]] | None = None
        # The listed platforms (classifier.watchlist) predict_many matches; None: the bundled list.
        self.watchlist: Watchlist | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.pipeline.classes_)

    @property
    def scorer(self) -> LinearScorer:
        if self._scorer is None:
            self._scorer = LinearScorer(self.pipeline)
        return self._scorer

    def predict(self, text: str) -> Verdict:
        return self.predict_many([text])[0]

    def predict_many(
        self, texts: Sequence[str], *, reasons: int = 5, watchlist: Watchlist | None = None
    ) -> list[Verdict]:
        """Verdicts for many posts in one vectorised pass; ``reasons=0`` skips the explanations.

        ``watchlist`` (default: :attr:`watchlist`, else the bundled list) names the listed platforms: a
        link to a look-alike or mirror of one makes a benign verdict ``trading_service``, with the
        look-alike as its first reason; every verdict records the listed platforms its post names or links."""
        if not texts:
            return []
        with _collector_paused if len(texts) >= PAUSE_COLLECTOR_FROM else nullcontext():
            scorer = self.scorer
            prepared = prepare_many(texts)
            blocks = scorer.features(prepared)
            whole = scorer.probabilities(blocks)
            classes = scorer.classes
            # A long post is read passage by passage too (classifier.passages), in a second batch.
            rows, owner = passages_to_read(prepared, whole, classes)
            passage_blocks = scorer.features(rows) if rows else None
            scored = scorer.probabilities(passage_blocks) if rows else whole[:0]
            probabilities = passages.combine(whole, classes, scored, owner)
            labels = decide(probabilities, classes, self.thresholds)
            listed = watchlist or self.watchlist or default_watchlist()  # an empty list is a list: no __len__
            found = [listed.match(text, post.normalized) for text, post in zip(texts, prepared)]
            labels = [
                TRADING_SERVICE if label == BENIGN and any(m.flags for m in f) else label
                for label, f in zip(labels, found)
            ]
            order = [classes.index(label) for label in LABELS if label in classes]
            label_indices = np.array([classes.index(label) for label in labels])
            if reasons:
                why = self._reasons(
                    scorer.contributions(blocks, label_indices, MIN_REASON_WEIGHT), len(texts), prepared, reasons
                )
                if rows:
                    chosen = passages.deciding(whole, scored, owner, label_indices)
                    self._passage_reasons(
                        why, chosen, label_indices, prepared, scored, passage_blocks, rows, owner, reasons
                    )
            else:
                why = [[] for _ in labels]
            for row, post in enumerate(prepared):
                if any(m.flags for m in found[row]):
                    why[row] = [watchlist_reason(m) for m in found[row] if m.flags] + why[row]
                if not is_covered(post.language):
                    why[row] = [language_reason(post.language), *why[row]]
            named = [classes[i] for i in order]
            return [
                Verdict(
                    label,
                    dict(zip(named, row_probabilities)),
                    why[row],
                    self.version,
                    prepared[row].language,
                    found[row],
                )
                for row, (label, row_probabilities) in enumerate(zip(labels, probabilities[:, order].tolist()))
            ]

    def _passage_reasons(self, why, chosen, label_indices, prepared, scored, blocks, rows, owner, limit) -> None:
        """For each post a passage flagged (``chosen``: its row, or -1), that passage first, then its reasons."""
        posts = np.flatnonzero(chosen >= 0)
        named, labels = chosen[posts], label_indices[posts]
        probability = scored[named, labels]
        threshold = np.array([self.thresholds.get(self.classes[label], 1.0) for label in labels.tolist()])
        # A passage that raised the label, where the whole post or the watchlist made the verdict, is not named.
        made = probability / passages.DISCOUNT >= threshold
        posts, named, labels, probability = posts[made], named[made], labels[made], probability[made]
        if not len(posts):
            return
        # Reasons of the named passages only, not of every passage in the batch.
        passage_why = self._reasons(
            self.scorer.contributions([block[named] for block in blocks], labels, MIN_REASON_WEIGHT),
            len(named),
            [rows[row] for row in named.tolist()],
            limit,
        )
        first = np.searchsorted(owner, np.arange(len(prepared)))
        for k, (post, row) in enumerate(zip(posts.tolist(), named.tolist())):
            index = row - int(first[post])
            parts = prepared[post].passages
            why[post] = [passage_reason(index, len(parts), parts[index], float(probability[k])), *passage_why[k]]

    def _reasons(
        self, contributions: Contributions, n_posts: int, prepared: list[PreparedPost], limit: int
    ) -> list[list[Reason]]:
        """Per post, the features that added most to its label's score (value times the SVM's weight),
        strongest first. One sort serves the whole batch; only the few kept per post reach Python."""
        names = self._feature_names()
        rows, features, weights = contributions
        if len(weights):
            # Rows ascending, weights descending within a row, as one float key: a stable argsort of one key
            # is six times faster than np.lexsort of two (half the time of all reasons, on 20,000 posts).
            # Every weight is positive and below the spacing, so no row's key reaches the next row's.
            spacing = 2.0 * float(weights.max()) + 1.0
            order = np.argsort(rows * spacing - weights, kind="stable")
        else:
            order = np.zeros(0, dtype=np.intp)
        sorted_rows = rows[order]
        bounds = np.searchsorted(sorted_rows, np.arange(n_posts + 1))
        # Only the first few of each row can become reasons; the rest never reach Python.
        rank = np.arange(len(order)) - bounds[sorted_rows]
        order = order[rank < limit * 3]
        bounds = np.searchsorted(rows[order], np.arange(n_posts + 1)).tolist()
        # Plain lists from here: indexing numpy arrays one element at a time is what made this slow.
        kept_features, kept_weights = features[order].tolist(), weights[order].tolist()
        result = []
        for row in range(n_posts):
            chosen: list[Reason] = []
            for j in range(bounds[row], bounds[row + 1]):
                if len(chosen) >= limit:
                    break
                block, feature = names[kept_features[j]]
                if block == "evidence":
                    chosen.append(Reason("evidence", prepared[row].evidence.describe(feature), kept_weights[j]))
                elif block == "words":
                    chosen.append(Reason("word", feature, kept_weights[j]))
                elif len(feature) > 1 and not any(feature in r.feature for r in chosen):
                    chosen.append(Reason("chars", feature, kept_weights[j]))
            result.append(chosen)
        return result

    def _feature_names(self) -> list[tuple[str, str]]:
        """(block, feature) of every column: ``chars``, ``words`` or ``evidence``, and what it reads."""
        if self._names is None:
            names = [name.split("__", 1) for name in self.pipeline.named_steps["features"].get_feature_names_out()]
            self._names = [(block, feature.strip() if block == "chars" else feature) for block, feature in names]
        return self._names

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_scorer"] = state["_names"] = None
        state["manifest"] = {}
        return state

    def __setstate__(self, state):
        # Models saved before the scorer existed carry an "_explainer" and no "_scorer" or "_names".
        state.pop("_explainer", None)
        self.__dict__.update({"_scorer": None, "_names": None, "watchlist": None} | state)


class _CollectorPause:
    """Pause the cyclic garbage collector while batches run. A batch allocates tens of thousands of small
    containers (match lists, evidence, verdicts) and creates no reference cycles; the collector's passes
    over them, and over everything else alive, cost about a tenth of the batch. Batches may run in several
    threads at once (the bot's), so the first to start pauses it and the last to finish resumes it, and
    only if it was running before."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0
        self._paused_by_us = False

    def __enter__(self):
        with self._lock:
            if self._running == 0:
                self._paused_by_us = gc.isenabled()
                gc.disable()
            self._running += 1

    def __exit__(self, *exc):
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._paused_by_us:
                gc.enable()
        return False


_collector_paused = _CollectorPause()
