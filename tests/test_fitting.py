"""Fits in worker processes: the same probabilities as fitting one split after another, in order."""

import multiprocessing

import numpy as np
import pytest

from classifier import fitting
from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
from classifier.fitting import Split, fit_and_predict, fit_and_predict_all
from classifier.model import prepare_many


@pytest.fixture(scope="module")
def splits():
    """Three splits of 240 bundled posts: each fits on two thirds and predicts the rest."""
    posts = []
    for label in ("ico", "trading_service", "benign"):
        posts += [p for p in load_corpus([BUNDLED_DATA_DIR]) if p.label == label][::40][:80]
    prepared = prepare_many([p.text for p in posts])
    labels = [p.label for p in posts]
    return [
        Split(
            [x for i, x in enumerate(prepared) if i % 3 != k],
            [y for i, y in enumerate(labels) if i % 3 != k],
            [x for i, x in enumerate(prepared) if i % 3 == k],
        )
        for k in range(3)
    ]


def test_processes_give_the_probabilities_of_fitting_one_after_another(splits):
    alone = [fit_and_predict(split) for split in splits]
    together = list(fit_and_predict_all(splits, processes=2))
    assert len(together) == len(splits)
    for a, b, split in zip(alone, together, splits):
        assert a.classes == b.classes == ["benign", "ico", "trading_service"]
        assert b.probabilities.shape == (len(split.test), 3)
        assert np.array_equal(a.probabilities, b.probabilities)  # to the last bit, not roughly


def test_one_process_fits_here(splits, monkeypatch):
    calls = []
    monkeypatch.setattr(fitting, "fit_and_predict", lambda split, C, family: calls.append(split) or split)
    assert list(fit_and_predict_all(splits, processes=1)) == splits
    assert calls == splits


def test_no_worker_outlives_the_fits(splits):
    # The bot can train on first use inside its own process: idle workers must not stay behind there.
    list(fit_and_predict_all(splits, processes=2))
    assert multiprocessing.active_children() == []
    results = fit_and_predict_all(splits, processes=2)
    next(results)
    results.close()  # a caller that stops early (an error in between) ends the workers too
    assert multiprocessing.active_children() == []


def test_held_out_long_posts_are_read_by_their_passages_as_the_product_reads_them(splits):
    """Training's figures must be those of the verdicts: a long test post is scored whole and by passage."""
    from classifier.model import PromotionClassifier, build_pipeline, fit_prepared, passages_to_read

    split = splits[0]
    chat = [
        "my daughter starts school on monday, we bought her shoes and a bag and she is so excited, her "
        "grandmother is coming over on sunday to take pictures before the first day",
        "the rain finally stopped so we walked to the park after dinner, the kids fed the ducks and we got "
        "ice cream on the way home, lovely evening honestly",
        "does anyone know a good plumber near the station? the kitchen tap has been dripping for a week and "
        "the landlord keeps saying he will send someone",
    ]
    texts = ["\n\n".join(chat), "gm all"]
    test = prepare_many(texts)
    predicted = fit_and_predict(Split(split.train, split.labels, test))
    pipeline = fit_prepared(build_pipeline(), list(split.train), np.asarray(split.labels))
    rows, owner = passages_to_read(test, pipeline[1:].predict_proba(test), predicted.classes)
    assert len(rows) == len(test[0].passages) > 1 and set(owner.tolist()) == {0}  # the long post was read
    verdicts = PromotionClassifier(pipeline).predict_many(texts, reasons=0)
    for row, verdict in zip(predicted.probabilities, verdicts):
        assert [verdict.scores[label] for label in predicted.classes] == pytest.approx(row.tolist(), abs=1e-7)
