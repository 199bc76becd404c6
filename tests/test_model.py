import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import LinearSVC

from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
from classifier.labels import LABELS
from classifier.model import BlendedCalibration, build_pipeline, decide, prepare_many

# The hard cases of ../shared/LABELS.md: the model must get the table right.
HARD_CASES = [
    ("China orders 124 overseas exchanges blocked; Binance and OKEx unreachable", "benign"),
    ("Binance blocked? Use our mirror binance-cn.example, code 88X for 20% off fees", "trading_service"),
    ("BTC breaks 100k, alts next", "benign"),
    ("BTC breaks 100k — our VIP called it, join @signals_vip for the next call", "trading_service"),
    ("Presale of $MOON ends Friday, 1 BNB = 50,000 MOON, buy at moon-sale.example", "ico"),
    ("The SEC sued the organisers of a 2017 ICO", "benign"),
    ("长期收U，汇率置顶，见U打款", "trading_service"),
    ("请问哪个交易所不用KYC?", "benign"),
    ("Pump starts in 10 minutes on KuCoin, pair USDT", "trading_service"),
]


@pytest.mark.parametrize("text, label", HARD_CASES)
def test_hard_cases_of_the_label_guide(trained_model, text, label):
    assert trained_model.predict(text).label == label


def test_verdict_has_probabilities_reasons_and_version(trained_model):
    verdict = trained_model.predict("Airdrop is LIVE 🎁 claim your free $ZAP at zap-drop.example/claim?ref=K9 now")
    assert verdict.label == "ico"
    assert set(verdict.scores) == set(LABELS)
    assert sum(verdict.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert verdict.reasons and all(r.weight > 0 for r in verdict.reasons)
    assert verdict.reasons == sorted(verdict.reasons, key=lambda r: -r.weight)
    assert verdict.model_version == trained_model.version != ""


def test_reasons_show_the_evidence_found(trained_model):
    verdict = trained_model.predict("币安注册邀请码 ABC123 返佣40% https://www.binance.com/register?ref=ABC123")
    assert verdict.label == "trading_service"
    shown = " ".join(str(r) for r in verdict.reasons)
    assert "binance" in shown or "ABC123" in shown


@pytest.mark.parametrize(
    "plain, disguised",
    [
        ("Sign up on Binance with my referral code", "Sign up on В i n а n с е with my referral code"),
        (
            "Presale is live, buy the token now",
            "P\u200br\u200be\u200bs\u200ba\u200bl\u200be is live, buy the token now",
        ),
        ("收U 出U 汇率置顶 飞机联系", "收Ｕ 出Ｕ 汇 率 置 顶 飞机联系"),
    ],
)
def test_obfuscation_does_not_change_the_verdict(trained_model, plain, disguised):
    a, b = trained_model.predict(plain), trained_model.predict(disguised)
    assert a.label == b.label
    assert a.scores[a.label] == pytest.approx(b.scores[a.label], abs=0.1)


def test_batch_and_single_predictions_agree(trained_model):
    texts = [t for t, _ in HARD_CASES]
    batch = trained_model.predict_many(texts)
    assert [v.label for v in batch] == [trained_model.predict(t).label for t in texts]
    assert trained_model.predict_many([]) == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🚀🚀🔥💎",
        "x" * 100_000,
        "Presale 🚀 " * 10_000,
        "bad \ud800 surrogate",
        "ctrl\x00\x01\x1b[31m",
        "\u200b\u200b",
    ],
)
def test_bad_input_still_gets_a_verdict(trained_model, text):
    verdict = trained_model.predict(text)
    assert verdict.label in LABELS


def test_decide_applies_per_label_thresholds():
    classes = ["benign", "ico", "trading_service"]
    probabilities = np.array([[0.50, 0.45, 0.05], [0.30, 0.20, 0.50], [0.90, 0.05, 0.05], [0.2, 0.42, 0.38]])
    thresholds = {"ico": 0.4, "trading_service": 0.6}
    assert decide(probabilities, classes, thresholds) == ["ico", "benign", "benign", "ico"]
    # The label furthest past its own threshold wins when two pass.
    assert decide(np.array([[0.0, 0.45, 0.55]]), classes, {"ico": 0.3, "trading_service": 0.5}) == ["ico"]


@pytest.fixture(scope="module")
def calibration_data(trained_model):
    """Features and labels of a fifth of the corpus, for fitting calibrations side by side."""
    posts = load_corpus([BUNDLED_DATA_DIR])[::5]
    features = trained_model.pipeline[1:-1].transform(prepare_many([p.text for p in posts]))
    return features, np.array([p.label for p in posts])


def test_blended_calibration_of_weight_zero_is_scikit_learns_calibration(calibration_data):
    X, y = calibration_data
    svm = LinearSVC(class_weight="balanced", random_state=0)
    plain = CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False).fit(X, y)
    unblended = BlendedCalibration(svm, method="sigmoid", cv=3, ensemble=False, benign_weight=0.0).fit(X, y)
    np.testing.assert_allclose(unblended.predict_proba(X), plain.predict_proba(X))


def test_blended_calibration_puts_benign_between_the_normalised_and_its_own_sigmoid(calibration_data):
    X, y = calibration_data
    blended = clone(build_pipeline()[-1]).fit(X, y)  # clone: scikit-learn must see benign_weight as a parameter
    assert blended.benign_weight == 0.5
    got = blended.predict_proba(X)
    normalised = CalibratedClassifierCV.predict_proba(blended, X)
    classes = list(blended.classes_)
    benign = classes.index("benign")
    calibrated = blended.calibrated_classifiers_[0]
    own = calibrated.calibrators[benign].predict(calibrated.estimator.decision_function(X)[:, benign])
    np.testing.assert_allclose(got[:, benign], (normalised[:, benign] + own) / 2)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    promotion = [i for i in range(len(classes)) if i != benign]
    np.testing.assert_allclose(
        got[:, promotion[0]] * normalised[:, promotion[1]],
        got[:, promotion[1]] * normalised[:, promotion[0]],
        atol=1e-12,
    )
    # Posts whose own benign sigmoid is below the normalised share: the blend lowers P(benign), and some exist.
    lower = own < normalised[:, benign]
    assert lower.any() and (got[lower, benign] < normalised[lower, benign]).all()


@pytest.mark.parametrize("word", ["a", "ab", "abc", "binance", "长期收u,汇率置顶", "0x1234567890abcdef"])
def test_char_wb_ngrams_match_scikit_learn(word):
    from sklearn.feature_extraction.text import CountVectorizer

    from classifier.model import char_wb_ngrams

    for low, high in [(1, 4), (2, 3), (3, 5)]:
        reference = CountVectorizer(analyzer="char_wb", ngram_range=(low, high), lowercase=False)
        assert char_wb_ngrams(word, low, high) == reference._char_wb_ngrams(word)


@pytest.mark.parametrize("numpy_from_chars", [0, 10**9])
def test_cached_char_ngrams_count_exactly_like_scikit_learn(numpy_from_chars):
    """Words the cache lacks looked up in numpy (classifier.gram_columns) or one at a time in the dict."""
    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
    from classifier.model import WordCachedCharNgrams, prepare_many

    posts = prepare_many([p.text for p in load_corpus([BUNDLED_DATA_DIR])][:400])
    vectorizer = WordCachedCharNgrams().fit(posts)
    vectorizer.NUMPY_FROM_CHARS = numpy_from_chars
    expected = vectorizer.counter_.transform([p.normalized for p in posts])
    assert (vectorizer.counts(posts) != expected).nnz == 0
    assert (vectorizer.counts(posts) != expected).nnz == 0  # and again, from the warm cache


@pytest.mark.parametrize("min_df, max_df", [(2, 0.9), (1, 1.0), (3, 40), (0.01, 0.5)])
def test_the_vocabulary_is_the_one_scikit_learn_fits(min_df, max_df):
    """Same n-grams, document-frequency limits (counts and shares) and order; the same idf."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
    from classifier.model import WordCachedCharNgrams, prepare_many

    posts = prepare_many([p.text for p in load_corpus([BUNDLED_DATA_DIR])][::20] + ["", "🚀", "a a a"])
    texts = [p.normalized for p in posts]
    ours = WordCachedCharNgrams(min_df=min_df, max_df=max_df).fit(posts)
    reference = CountVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=min_df, max_df=max_df, lowercase=False)
    counts = reference.fit_transform(texts)
    assert ours.counter_.vocabulary_ == reference.vocabulary_
    assert np.allclose(ours.tfidf_.idf_, TfidfTransformer(sublinear_tf=True).fit(counts).idf_)


@pytest.mark.parametrize("min_df, max_df", [(2, 0.9), (1, 1.0)])
def test_fit_transform_is_fit_then_transform(min_df, max_df):
    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
    from classifier.model import WordCachedCharNgrams, prepare_many

    posts = prepare_many([p.text for p in load_corpus([BUNDLED_DATA_DIR])][::25] + ["", "🚀", "a a a"])
    together = WordCachedCharNgrams(min_df=min_df, max_df=max_df).fit_transform(posts)
    apart = WordCachedCharNgrams(min_df=min_df, max_df=max_df).fit(posts).transform(posts)
    assert together.dtype == apart.dtype == np.float32
    assert together.has_canonical_format
    assert abs(together - apart).max() == 0 and together.nnz == apart.nnz


def test_a_vocabulary_pruned_to_nothing_is_refused_like_scikit_learn_refuses_it():
    from classifier.model import WordCachedCharNgrams, prepare_many

    with pytest.raises(ValueError, match="no terms remain"):
        WordCachedCharNgrams(min_df=5).fit(prepare_many(["one post", "another"]))


def test_the_word_cache_stays_within_its_limit_and_keeps_its_recent_half():
    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
    from classifier.model import WordCachedCharNgrams, prepare_many

    posts = prepare_many([p.text for p in load_corpus([BUNDLED_DATA_DIR])][:400])
    vectorizer = WordCachedCharNgrams().fit(posts)
    vectorizer.CACHE_LIMIT = 100
    expected = vectorizer.counter_.transform([p.normalized for p in posts])
    assert (vectorizer.counts(posts) != expected).nnz == 0
    assert 50 <= len(vectorizer._cache) <= 100
    assert all(indices.base is None for indices in vectorizer._cache.values())  # no view keeps a batch alive
    last_word = posts[-1].normalized.split()[-1]
    assert last_word in vectorizer._cache or len(last_word) > vectorizer.CACHEABLE_LENGTH


def test_batch_reasons_are_each_posts_own_strongest_features(trained_model):
    """The batch sort must keep every post's reasons to its own row: the first reason of each post is
    the largest contribution in that post's own feature vector."""
    import scipy.sparse as sp

    from classifier.model import prepare_many

    texts = [t for t, _ in HARD_CASES] + ["", "🚀", "hello there"]
    verdicts = trained_model.predict_many(texts)
    union = trained_model.pipeline.named_steps["features"]
    coef = trained_model.pipeline[-1].calibrated_classifiers_[0].estimator.coef_
    # A single character explains nothing to a moderator, so it is never a reason (model._reasons).
    names = union.get_feature_names_out()
    explains = np.array([not (n.startswith("chars__") and len(n.removeprefix("chars__").strip()) <= 1) for n in names])
    for text, verdict in zip(texts, verdicts):
        row = sp.csr_matrix(union.transform(prepare_many([text])))
        k = trained_model.classes.index(verdict.label)
        keep = explains[row.indices]
        contributions = row.data[keep] * coef[k, row.indices[keep]]
        # The model's own reasons; a watchlist match (a mirror link) comes first and weighs nothing in the model.
        weights = [r.weight for r in verdict.reasons if r.kind != "watchlist"]
        assert weights == sorted(weights, reverse=True) and all(w >= 0.01 for w in weights)
        if weights:
            assert weights[0] == pytest.approx(float(contributions.max()), rel=1e-5)
        else:
            assert contributions.size == 0 or contributions.max() < 0.01


def test_a_batch_leaves_the_garbage_collector_as_it_found_it(trained_model):
    import gc

    from classifier.model import PAUSE_COLLECTOR_FROM

    big = ["Presale live, buy now", "hello"] * PAUSE_COLLECTOR_FROM
    assert gc.isenabled()
    trained_model.predict_many(big)
    assert gc.isenabled()
    gc.disable()
    try:
        trained_model.predict_many(big)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_only_large_batches_pause_the_collector(trained_model, monkeypatch):
    """The bot's small batches run beside the event loop, whose garbage must go on being collected."""
    import gc

    import classifier.model as model

    original, seen = model.prepare_many, []

    def recording(texts):
        seen.append((len(texts), gc.isenabled()))
        return original(texts)

    monkeypatch.setattr(model, "prepare_many", recording)
    trained_model.predict_many(["Presale live, buy now"] * 100)
    trained_model.predict_many(["Presale live, buy now"] * model.PAUSE_COLLECTOR_FROM)
    assert seen == [(100, True), (model.PAUSE_COLLECTOR_FROM, False)]
    assert gc.isenabled()


def test_overlapping_batches_resume_the_collector_only_when_the_last_one_ends():
    """Batches run in several of the bot's threads at once: the first to end must not resume collection
    under the other."""
    import gc

    from classifier.model import _collector_paused

    first, second = _collector_paused, _collector_paused
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_post_in_a_language_the_model_does_not_cover_says_so_first(trained_model):
    russian = (
        "Всем привет! Перезалив видео с канала, ссылка в описании, подписывайтесь и ставьте лайки, "
        "новые ролики каждый день"
    )
    verdict, english = trained_model.predict_many([russian, "Presale of $MOON ends Friday, buy at moon-sale.example"])
    assert verdict.language == "ru" and not verdict.language_covered
    assert verdict.reasons[0].kind == "language" and verdict.reasons[0].feature.startswith("ru, not covered")
    assert str(verdict.reasons[0]).startswith("language: ru, not covered by the model")
    assert verdict.to_dict()["language_covered"] is False
    assert english.language == "en" and english.language_covered
    assert all(r.kind != "language" for r in english.reasons)


@pytest.mark.parametrize("text", ["😀" * 200, "Happy birthday mum! " + "🎉" * 100, "🎉🎂🥳"])
def test_emoji_alone_do_not_make_a_promotion(trained_model, text):
    verdict = trained_model.predict(text)
    assert verdict.label == "benign", verdict
    assert all("emoji" not in r.feature for r in verdict.reasons)


# Handles and links sat mostly in promotion in the older corpus, so tagging an account read as a pitch
# (a panel recap tagging two speakers scored 0.48 trading_service); news footers and replies carry them too.
TAGGED_BUT_BENIGN = [
    "Great panel today with @alice_chain and @bobdefi on stablecoin regulation, thanks all",
    "SEC delays decision on spot SOL ETF again. via @WuBlockchain",
    "币安宣布下架三个交易对，明日生效。\n\n订阅频道 @bitnews_cn | 投稿 @bitnews_tougao",
    "Binance to delist three pairs tomorrow.\n\nFollow @cryptonews_daily for more",
]


@pytest.mark.parametrize("text", TAGGED_BUT_BENIGN)
def test_tagging_an_account_or_a_channel_footer_is_not_promotion(trained_model, text):
    assert trained_model.predict(text).label == "benign"


# -- platform watchlists (classifier/watchlist.py) -----------------------------------------------


def test_a_look_alike_link_flags_a_post_the_model_alone_would_not(trained_model):
    from classifier.watchlist import Watchlist

    # Enough of an ordinary post that the model alone reads it benign: a bare link to an unknown site is
    # itself a weak sign of promotion.
    text = "Lunch at noon tomorrow? I booked the usual table, the menu is at b1nance-vip.example, see you all there"
    assert trained_model.predict_many([text], watchlist=Watchlist([]))[0].label == "benign"
    verdict = trained_model.predict(text)  # the bundled list
    assert verdict.label == "trading_service" and verdict.watchlist_flagged
    assert str(verdict.reasons[0]) == "watchlist: look-alike of binance.com: b1nance-vip.example"
    assert verdict.platforms == ["Binance"]
    assert verdict.to_dict()["watchlist"] == [
        {"platform": "Binance", "rule": "look-alike", "found": "b1nance-vip.example", "listed": "binance.com"}
    ]


def test_a_plain_mention_is_recorded_but_not_flagged(trained_model):
    verdict = trained_model.predict("China orders 124 overseas exchanges blocked; Binance and 火币 unreachable")
    assert verdict.label == "benign" and not verdict.watchlist_flagged
    assert verdict.platforms == ["Binance", "Huobi"]
    assert trained_model.predict("Lunch at noon tomorrow?").platforms == []


def test_the_list_passed_in_or_set_on_the_classifier_is_the_one_used(trained_model):
    from classifier.platforms import Platform
    from classifier.watchlist import Watchlist

    mine = Watchlist([Platform("Fooex", ("fooexchange.com",), ("福交易",))])
    text = "Lunch at noon tomorrow? menu at f0oexchange-app.com, ask 福交易"
    (verdict,) = trained_model.predict_many([text], watchlist=mine)
    assert verdict.label == "trading_service" and verdict.platforms == ["Fooex"]
    assert "look-alike of fooexchange.com: f0oexchange-app.com" in str(verdict.reasons[0])
    assert trained_model.predict(text).platforms == []  # not on the bundled list
    trained_model.watchlist = mine
    try:
        assert trained_model.predict(text).platforms == ["Fooex"]
    finally:
        trained_model.watchlist = None
