"""The promotion classifier: a scikit-learn Pipeline plus per-label thresholds and explanations.

Character n-grams read Chinese without a segmenter and survive typos; word n-grams carry English
phrases; the evidence features carry what regular expressions find (links, exchanges, referral codes,
addresses, OTC slang). A linear SVM over all three, calibrated with Platt scaling, gives probabilities;
per-label thresholds tuned on cross-validated predictions turn them into a label.
"""

from __future__ import annotations

from operator import attrgetter
from typing import NamedTuple, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classifier.evidence import Evidence, extract
from classifier.labels import BENIGN, LABELS, PROMOTION_LABELS
from classifier.normalize import clean, fold
from classifier.verdict import Reason, Verdict

# Telegram posts stop at 4096 characters (captions at 1024); anything longer is pasted text, and its
# first part says what it is. The cap keeps a 100 KB paste from costing 100 times a post.
MAX_CHARS = 8000
DEFAULT_THRESHOLDS = {label: 0.5 for label in PROMOTION_LABELS}


class PreparedPost(NamedTuple):
    normalized: str
    evidence: Evidence


def prepare(text: str) -> PreparedPost:
    """Clean once, then derive both the n-gram text and the evidence from it."""
    cleaned = clean(text[:MAX_CHARS])
    normalized = fold(cleaned)
    return PreparedPost(normalized, extract(text, cleaned=cleaned, normalized=normalized))


def prepare_many(texts: Sequence[str]) -> list[PreparedPost]:
    return [prepare(t) for t in texts]


class EvidenceVectorizer(TransformerMixin, BaseEstimator):
    """Turns each post's :class:`Evidence` into named numeric features."""

    def fit(self, posts, y=None):
        self.vectorizer_ = DictVectorizer(dtype=np.float32).fit(p.evidence.features() for p in posts)
        return self

    def transform(self, posts):
        return self.vectorizer_.transform(p.evidence.features() for p in posts)

    def get_feature_names_out(self, input_features=None):
        return self.vectorizer_.get_feature_names_out()


def build_pipeline(C: float = 0.5) -> Pipeline:
    text_of = attrgetter("normalized")
    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, max_df=0.9,
                                      sublinear_tf=True, preprocessor=text_of, dtype=np.float32)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, max_df=0.9,
                                      sublinear_tf=True, preprocessor=text_of, dtype=np.float32,
                                      token_pattern=r"[$#@]?[^\W\d_][\w']+|\d+%?")),
            ("evidence", EvidenceVectorizer()),
        ]
    )
    svm = LinearSVC(C=C, class_weight="balanced")
    return Pipeline(
        [
            ("prepare", FunctionTransformer(prepare_many)),
            ("features", features),
            # ensemble=False: one SVM fitted on all the data, so its weights explain every verdict.
            ("model", CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False)),
        ]
    )


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
        self._explainer = None

    @property
    def classes(self) -> list[str]:
        return list(self.pipeline.classes_)

    def predict(self, text: str) -> Verdict:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str], *, reasons: int = 5) -> list[Verdict]:
        """Verdicts for many posts in one vectorised pass; ``reasons=0`` skips the explanations."""
        if not texts:
            return []
        prepared = prepare_many(texts)
        features = self.pipeline.named_steps["features"].transform(prepared)
        probabilities = self.pipeline[-1].predict_proba(features)
        labels = decide(probabilities, self.classes, self.thresholds)
        verdicts = []
        for row, label in enumerate(labels):
            scores = {c: float(probabilities[row, i]) for i, c in enumerate(self.classes)}
            why = self._reasons(features[row], label, prepared[row].evidence, reasons) if reasons else []
            verdicts.append(Verdict(label, {k: scores[k] for k in LABELS if k in scores}, why, self.version))
        return verdicts

    def _reasons(self, row, label: str, evidence: Evidence, limit: int) -> list[Reason]:
        names, coef = self._explanation_weights()
        k = self.classes.index(label)
        contributions = row.data * coef[k, row.indices]
        order = np.argsort(-contributions)
        chosen: list[Reason] = []
        for j in order:
            weight = float(contributions[j])
            if weight <= 0 or len(chosen) >= limit:
                break
            block, feature = names[row.indices[j]].split("__", 1)
            if block == "evidence":
                chosen.append(Reason("evidence", evidence.describe(feature), weight))
            elif block == "words":
                chosen.append(Reason("word", feature, weight))
            elif not any(feature.strip() in r.feature for r in chosen) and len(feature.strip()) > 1:
                chosen.append(Reason("chars", feature.strip(), weight))
        return chosen

    def _explanation_weights(self):
        if self._explainer is None:
            names = self.pipeline.named_steps["features"].get_feature_names_out()
            svm = self.pipeline[-1].calibrated_classifiers_[0].estimator
            self._explainer = (names, np.asarray(svm.coef_))
        return self._explainer

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_explainer"] = None
        state["manifest"] = {}
        return state
