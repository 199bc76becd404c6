"""The scorer must compute exactly what the fitted scikit-learn pipeline computes, only without its checks."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import CountVectorizer

from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
from classifier.model import PromotionClassifier, build_pipeline, decide, prepare_many, probabilities_with_passages
from classifier.scoring import LinearScorer, blend_benign, rows_matrix, tfidf, word_ngram_counts

ODD_POSTS = [
    "",
    "🚀🚀🚀",
    "a",
    "​",
    "x" * 20000,
    "币安 binance BINANCE b i n a n c e",
    "\ud800 lone surrogate",
    "0x52908400098527886E0F7030069857D2E4169EE7 T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb t.me/+abc",
]


@pytest.fixture(scope="module")
def sample_texts():
    posts = load_corpus([BUNDLED_DATA_DIR])
    return [p.text for p in posts[::7]] + ODD_POSTS


def test_probabilities_equal_the_pipelines_predict_proba(trained_model, sample_texts):
    expected = trained_model.pipeline.predict_proba(sample_texts)
    scorer = LinearScorer(trained_model.pipeline)
    got = scorer.probabilities(scorer.features(prepare_many(sample_texts)))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_feature_blocks_equal_the_feature_union(trained_model, sample_texts):
    prepared = prepare_many(sample_texts)
    union = trained_model.pipeline.named_steps["features"]
    expected = sp.csr_matrix(union.transform(prepared))
    got = sp.hstack(LinearScorer(trained_model.pipeline).features(prepared), format="csr")
    assert abs(got - expected).max() < 1e-6
    assert (got != 0).nnz == (expected != 0).nnz


def test_evidence_features_equal_the_dict_vectorizers_own(trained_model, sample_texts):
    evidence = trained_model.pipeline.named_steps["features"].transformer_list[2][1]
    prepared = prepare_many(sample_texts)
    expected = evidence.vectorizer_.transform(p.evidence.features() for p in prepared)
    got = evidence.transform(prepared)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert abs(got - expected).max() == 0


def test_rows_matrix_sums_the_columns_a_row_repeats():
    got = rows_matrix([3, 0, 2], np.array([4, 1, 4, 0, 0]), 5, data=[1.0, 2.0, 0.5, 1.0, 3.0])
    expected = np.zeros((3, 5), dtype=np.float32)
    expected[0, 4], expected[0, 1], expected[2, 0] = 1.5, 2.0, 4.0
    np.testing.assert_array_equal(got.toarray(), expected)
    assert got.has_canonical_format and got.nnz == 3
    ones = rows_matrix([2, 1], np.array([2, 2, 0]), 3)
    np.testing.assert_array_equal(ones.toarray(), [[0, 0, 2], [1, 0, 0]])
    assert rows_matrix([], np.zeros(0, dtype=np.int32), 3).shape == (0, 3)


def test_rows_matrix_is_the_same_whichever_way_it_sums_repeats():
    # More entries than columns: summed after a transpose; fewer: by sorting each row.
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 40, size=50)
    indices = rng.integers(0, 30, size=int(lengths.sum()))
    many = rows_matrix(lengths, indices, 30)
    few = rows_matrix(lengths, indices, 10_000)[:, :30]
    assert many.has_canonical_format
    np.testing.assert_array_equal(many.toarray(), few.toarray())
    expected = np.zeros((50, 30))
    np.add.at(expected, (np.repeat(np.arange(50), lengths), indices), 1)
    np.testing.assert_array_equal(many.toarray(), expected)


def test_tfidf_equals_scikit_learns_transform(trained_model, sample_texts):
    """Including rows with no word at all (empty and emoji-only posts)."""
    words = trained_model.pipeline.named_steps["features"].transformer_list[1][1]
    prepared = prepare_many(sample_texts)
    expected = words.transform(prepared)
    got = tfidf(CountVectorizer.transform(words, prepared), words)
    assert np.isfinite(got.data).all()
    assert abs(got - expected).max() < 1e-6


def test_word_counts_equal_the_vectorizers_own(trained_model, sample_texts):
    words = trained_model.pipeline.named_steps["features"].transformer_list[1][1]
    prepared = prepare_many(sample_texts)
    expected = CountVectorizer.transform(words, prepared)
    got = word_ngram_counts(words, prepared)
    assert got.dtype == expected.dtype and got.has_sorted_indices
    assert (got != expected).nnz == 0


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 3), (2, 3)])
def test_word_counts_equal_for_other_ngram_ranges(sample_texts, ngram_range):
    vectorizer = CountVectorizer(ngram_range=ngram_range, min_df=2).fit(sample_texts)
    assert (word_ngram_counts(vectorizer, sample_texts) != vectorizer.transform(sample_texts)).nnz == 0


def test_verdict_labels_equal_thresholds_applied_to_predict_proba(trained_model, sample_texts):
    classes = trained_model.classes
    probabilities = probabilities_with_passages(
        prepare_many(sample_texts), trained_model.pipeline[1:].predict_proba, classes
    )
    expected = decide(probabilities, classes, trained_model.thresholds)
    from classifier.watchlist import Watchlist

    # The model's labels alone: no watchlist, whose look-alike links would turn some benign ones.
    assert [v.label for v in trained_model.predict_many(sample_texts, watchlist=Watchlist([]))] == expected


def test_a_two_label_model_scores_like_its_pipeline():
    """scikit-learn keeps one row of SVM weights when there are two classes; the scorer must follow."""
    posts = [p for p in load_corpus([BUNDLED_DATA_DIR]) if p.label != "trading_service"][::4]
    pipeline = build_pipeline().fit([p.text for p in posts], [p.label for p in posts])
    texts = [p.text for p in posts[:60]] + ODD_POSTS
    scorer = LinearScorer(pipeline)
    np.testing.assert_allclose(
        scorer.probabilities(scorer.features(prepare_many(texts))), pipeline.predict_proba(texts), rtol=1e-5, atol=1e-7
    )
    verdicts = PromotionClassifier(pipeline, {"ico": 0.5, "trading_service": 0.5}).predict_many(texts)
    assert {v.label for v in verdicts} == {"ico", "benign"}
    # One row of weights serves both labels: for benign its negation. Each post's first reason must be
    # its largest contribution to its own label's score.
    coef = pipeline[-1].calibrated_classifiers_[0].estimator.coef_[0]
    union = pipeline.named_steps["features"]
    # Single characters are never shown as reasons, so the first reason is the strongest of the rest.
    names = union.get_feature_names_out()
    shown = np.array([not (n.startswith("chars__") and len(n.split("__", 1)[1].strip()) <= 1) for n in names])
    for text, verdict in zip(texts, verdicts):
        row = sp.csr_matrix(union.transform(prepare_many([text])))
        sign = 1.0 if verdict.label == pipeline.classes_[1] else -1.0
        contributions = row.data * sign * coef[row.indices]
        strongest = float(contributions[shown[row.indices]].max(initial=0.0))
        if verdict.reasons:
            assert verdict.reasons[0].weight == pytest.approx(strongest, rel=1e-5)
        else:
            assert strongest < 0.01


def test_each_score_is_the_probability_of_its_own_label(trained_model, sample_texts):
    classes = trained_model.classes
    # The pipeline's own probabilities, each long post's raised by its passages as training measures them.
    expected = probabilities_with_passages(
        prepare_many(sample_texts), trained_model.pipeline[1:].predict_proba, classes
    )
    assert any(post.passages for post in prepare_many(sample_texts))  # the sample holds long posts
    for row, verdict in enumerate(trained_model.predict_many(sample_texts, reasons=0)):
        assert list(verdict.scores) == ["ico", "trading_service", "benign"]
        for label, probability in verdict.scores.items():
            assert probability == pytest.approx(expected[row, classes.index(label)], abs=1e-7)


def test_blend_moves_benign_towards_its_own_sigmoid_and_keeps_the_promotion_shares():
    # Columns: benign, ico, trading_service. Normalised P(benign) 0.2, its own sigmoid 0.1.
    probabilities = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    blended = blend_benign(probabilities, np.array([0.1, 0.9]), 0, 0.5)
    np.testing.assert_allclose(blended[:, 0], [0.15, 0.75])
    np.testing.assert_allclose(blended[0, 1:], [0.85 * 0.5 / 0.8, 0.85 * 0.3 / 0.8])
    np.testing.assert_allclose(blended[1, 1:], [0.25 * 0.25, 0.25 * 0.75])
    np.testing.assert_allclose(blended.sum(axis=1), 1.0)


def test_blend_of_weight_zero_changes_nothing_and_a_row_without_promotion_mass_shares_it_evenly():
    probabilities = np.array([[1.0, 0.0, 0.0], [0.3, 0.3, 0.4]])
    assert blend_benign(probabilities, np.array([0.2, 0.2]), 0, 0.0) is probabilities
    blended = blend_benign(probabilities, np.array([0.4, 0.3]), 0, 0.5)
    np.testing.assert_allclose(blended[0], [0.7, 0.15, 0.15])


def test_a_model_saved_before_the_blend_scores_as_its_pipeline_normalised_only(sample_texts):
    posts = load_corpus([BUNDLED_DATA_DIR])[::20]
    pipeline = build_pipeline()
    svm = pipeline.steps[-1][1].estimator
    pipeline.steps[-1] = ("model", CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False))
    pipeline.fit([p.text for p in posts], [p.label for p in posts])
    scorer = LinearScorer(pipeline)
    assert scorer.benign_weight == 0.0
    got = scorer.probabilities(scorer.features(prepare_many(sample_texts)))
    np.testing.assert_allclose(got, pipeline.predict_proba(sample_texts), rtol=1e-5, atol=1e-7)
