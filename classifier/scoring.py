"""The fitted pipeline's arithmetic after the n-gram counts, done on its own arrays.

scikit-learn validates its input on every call (types, finiteness, parameters, dataframe protocols). On a
batch that is nothing; on one post it is about 2 ms, ten times the arithmetic, and the bot classifies
posts one update at a time. So inference reads the fitted pieces once (idf vectors, the SVM's weights,
Platt's sigmoid parameters) and does the same sums: tf-idf as ``TfidfTransformer.transform``, the
decision function as ``LinearSVC.decision_function``, the calibrated probabilities as
``CalibratedClassifierCV.predict_proba`` (then :func:`blend_benign`, as the model's calibration does). The pipeline stays the model: training fits it, persistence
saves it, and tests/test_scoring.py holds these results to the pipeline's own ``predict_proba``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.feature_extraction.text import CountVectorizer

from classifier.labels import BENIGN

CONTRIBUTION_ROWS = 2048


class Contributions(NamedTuple):
    """Features of a batch that added to their post's label: the post's row, the column in the whole
    feature space, and the value times the SVM weight of the row's label (what it added to the score)."""

    rows: np.ndarray
    features: np.ndarray
    weights: np.ndarray


def tfidf(counts: sp.csr_matrix, weighting) -> sp.csr_matrix:
    """``TfidfTransformer.transform`` of a count matrix, in place, for a fitted ``weighting`` (a
    TfidfTransformer or TfidfVectorizer: ``sublinear_tf``, ``use_idf``/``idf_``, ``norm``)."""
    data = counts.data
    if weighting.sublinear_tf:
        np.log(data, out=data)
        data += 1.0
    if weighting.use_idf:
        data *= weighting.idf_[counts.indices]
    if weighting.norm == "l2":
        rows = _row_of_each_value(counts)
        # A row without n-grams has no values to divide, so its zero norm is never used.
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=counts.shape[0]))
        data /= norms[rows].astype(data.dtype)
    elif weighting.norm is not None:
        raise ValueError(f"tf-idf norm {weighting.norm!r} is not supported by the scorer")
    return counts


def rows_matrix(lengths, indices, n_columns: int, data=None, dtype=np.float32) -> sp.csr_matrix:
    """The CSR matrix whose row ``i`` holds the next ``lengths[i]`` of ``indices`` (columns, in any order,
    repeats allowed), with ``data`` or ones; a column repeated within a row holds the sum of its values.

    Every count matrix here is built this way: each word or n-gram found adds a one to its column. To sum
    repeats, ``sum_duplicates`` sorts each row's columns. A transpose there and back leaves them sorted in
    time linear in the entries and the columns: half the time once the entries outnumber the columns (a
    batch of posts), but for one post the columns dominate (300 µs against 20). There, sorting one number
    per entry (row and column) costs less than scipy's sorting and summing row by row: 40 of a long post's
    100 µs."""
    if len(indices) > n_columns:
        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        values = np.ones(len(indices), dtype=dtype) if data is None else np.asarray(data, dtype=dtype)
        matrix = sp.csr_matrix((values, indices, indptr), shape=(len(lengths), n_columns)).tocsc().tocsr()
        matrix.sum_duplicates()
        return matrix
    keys = np.repeat(np.arange(len(lengths), dtype=np.int64) * n_columns, lengths) + indices
    if data is None:
        keys, values = np.unique(keys, return_counts=True)
    else:
        keys, where = np.unique(keys, return_inverse=True)
        values = np.bincount(where, weights=np.asarray(data, dtype=np.float64), minlength=len(keys))
    rows, columns = np.divmod(keys, n_columns)
    indptr = np.searchsorted(rows, np.arange(len(lengths) + 1))
    matrix = sp.csr_matrix((values.astype(dtype), columns.astype(np.int32), indptr), shape=(len(lengths), n_columns))
    matrix.has_canonical_format = True  # sorted and summed: scipy need not check again
    return matrix


def blend_benign(probabilities: np.ndarray, benign_sigmoid: np.ndarray, benign: int, weight: float) -> np.ndarray:
    """Probabilities whose benign column is the weighted mean (``weight`` on the sigmoid) of the normalised
    one and ``benign_sigmoid``, the benign-versus-rest sigmoid's own estimate before normalisation; the
    promotion labels share the rest in the proportions they had. Rows still sum to one.

    Why: normalising divides one by the sum of three one-versus-rest sigmoids. Promotion of a kind the
    model has not seen scores low on both promotion sigmoids, so normalising hands most of the mass to
    benign even when the benign sigmoid itself is also low (model.BlendedCalibration has the figures)."""
    if not weight:
        return probabilities
    blended = (1.0 - weight) * probabilities[:, benign] + weight * benign_sigmoid
    others = 1.0 - probabilities[:, benign]
    # A row whose promotion labels had no mass at all (sigmoids that underflowed) shares the rest equally.
    even = np.full_like(probabilities, 1.0 / (probabilities.shape[1] - 1))
    shares = np.divide(probabilities, others[:, None], out=even, where=others[:, None] > 0)
    result = shares * (1.0 - blended)[:, None]
    result[:, benign] = blended
    return result


def word_ngram_counts(vectorizer, documents) -> sp.csr_matrix:
    """``CountVectorizer.transform`` of a fitted word-n-gram vectorizer (no stop words, counts not binary).

    scikit-learn builds every n-gram of a document, then looks each up and counts it in a Python loop with
    a try/except per n-gram: a fifth of a batch's time. Here the lookups run in ``map`` and the counting in
    ``sum_duplicates``; the tokens are the vectorizer's own (its preprocessor and tokenizer)."""
    if vectorizer.analyzer != "word" or vectorizer.stop_words is not None or vectorizer.binary:
        return CountVectorizer.transform(vectorizer, documents)
    vocabulary = vectorizer.vocabulary_
    preprocess, tokenize = vectorizer.build_preprocessor(), vectorizer.build_tokenizer()
    min_n, max_n = vectorizer.ngram_range
    pieces, lengths = [], []
    for document in documents:
        tokens = tokenize(preprocess(document))
        grams = list(tokens) if min_n == 1 else []
        for n in range(max(min_n, 2), max_n + 1):
            grams += map(" ".join, zip(*(tokens[i:] for i in range(n))))
        found = [i for i in map(vocabulary.get, grams) if i is not None]
        lengths.append(len(found))
        pieces += found
    return rows_matrix(lengths, np.array(pieces, dtype=np.int32), len(vocabulary), dtype=vectorizer.dtype)


def _row_of_each_value(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


class LinearScorer:
    """Feature blocks, calibrated probabilities and per-feature contributions from a fitted pipeline
    of ``prepare → FeatureUnion(chars, words, evidence) → CalibratedClassifierCV(LinearSVC)``."""

    def __init__(self, pipeline):
        union = pipeline.named_steps["features"]
        self.chars, self.words, self.evidence = (t for _, t in union.transformer_list)
        # ensemble=True would average several calibrated SVMs; weighted blocks would scale the features.
        if len(pipeline[-1].calibrated_classifiers_) != 1 or union.transformer_weights is not None:
            raise ValueError("the scorer expects one calibrated SVM over unweighted feature blocks")
        calibrated = pipeline[-1].calibrated_classifiers_[0]
        svm = calibrated.estimator
        self.classes = list(pipeline.classes_)
        if list(svm.classes_) != self.classes or calibrated.method != "sigmoid":
            raise ValueError("the scorer expects one sigmoid-calibrated SVM over the pipeline's own classes")
        coef = np.asarray(svm.coef_, dtype=np.float64)
        # Two classes: scikit-learn keeps one row of weights, for the second class.
        self.binary = coef.shape[0] == 1
        self.class_coef = np.vstack([-coef, coef]) if self.binary else coef
        # Flattened once: LinearSVC's coef_ is Fortran-ordered, so a ravel per call copied every weight (86 µs a
        # call for the 9,800-post corpus's vocabulary, a third of a one-post verdict).
        self.flat_coef = np.ascontiguousarray(self.class_coef).ravel()
        widths = [len(t.get_feature_names_out()) for t in (self.chars, self.words, self.evidence)]
        self.offsets = np.concatenate([[0], np.cumsum(widths)]).tolist()
        # One (features × classes) slice per block, contiguous, so a block multiplies without the hstack.
        self.block_weights = [np.ascontiguousarray(coef[:, a:b].T) for a, b in zip(self.offsets, self.offsets[1:])]
        self.intercept = np.asarray(svm.intercept_, dtype=np.float64)
        self.sigmoid_a = np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64)
        self.sigmoid_b = np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64)
        # Models saved before model.BlendedCalibration normalise only (weight 0).
        self.benign_weight = float(getattr(pipeline[-1], "benign_weight", 0.0)) if not self.binary else 0.0
        self.benign = self.classes.index(BENIGN) if BENIGN in self.classes else None

    def features(self, prepared) -> list[sp.csr_matrix]:
        """The three feature blocks of the prepared posts, as the pipeline's FeatureUnion makes them."""
        chars = tfidf(self.chars.counts(prepared), self.chars.tfidf_)
        words = tfidf(word_ngram_counts(self.words, prepared), self.words)
        return [chars, words, self.evidence.transform(prepared)]

    def probabilities(self, blocks: list[sp.csr_matrix]) -> np.ndarray:
        """Calibrated probabilities, one row per post, columns in ``self.classes`` order."""
        decision = self.intercept + sum(block @ weights for block, weights in zip(blocks, self.block_weights))
        calibrated = expit(-(self.sigmoid_a * decision + self.sigmoid_b))
        if self.binary:
            return np.column_stack([1.0 - calibrated[:, 0], calibrated[:, 0]])
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / len(self.classes))
        probabilities = np.divide(calibrated, total, out=uniform, where=total != 0)
        # As predict_proba does: a rounding error above 1 is 1.
        probabilities[(probabilities > 1.0) & (probabilities <= 1.0 + 1e-5)] = 1.0
        if self.benign is None:
            return probabilities
        return blend_benign(probabilities, calibrated[:, self.benign], self.benign, self.benign_weight)

    def contributions(self, blocks: list[sp.csr_matrix], label_indices: np.ndarray, minimum: float) -> Contributions:
        """What each feature of each post added to the score of that post's label, where that is at least
        ``minimum`` (a reason worth showing). Rows are taken a slice at a time: every value of a batch
        needs three temporary arrays, which for 20,000 posts came to 130 MB."""
        rows, features, weights = [], [], []
        flat_coef, width = self.flat_coef, self.class_coef.shape[1]
        n_rows = blocks[0].shape[0]
        for start in range(0, n_rows, CONTRIBUTION_ROWS):
            labels = label_indices[start : start + CONTRIBUTION_ROWS] * width
            for block, offset in zip(blocks, self.offsets):
                # Slicing copies through scipy's indexing, 20 µs a block even for a batch of one post.
                part = block if n_rows <= CONTRIBUTION_ROWS else block[start : start + CONTRIBUTION_ROWS]
                part_rows = _row_of_each_value(part)
                columns = part.indices + offset
                # np.take on the flattened weights: twice as fast as two-array fancy indexing.
                added = part.data * np.take(flat_coef, labels[part_rows] + columns)
                kept = np.flatnonzero(added >= minimum)
                rows.append(part_rows[kept] + start)
                features.append(columns[kept])
                weights.append(added[kept])
        return Contributions(np.concatenate(rows), np.concatenate(features), np.concatenate(weights))
