"""Leave-one-register-out, -genre-out and -source-out: every measured post is predicted by a model that
never saw its register (or genre, or corpus file)."""

import pytest

from classifier import generalisation
from classifier.corpus import BUNDLED_DATA_DIR, LabelledPost, load_corpus
from classifier.generalisation import leave_one_out
from classifier.model import prepare_many
from classifier.report import leave_one_out_markdown

REGISTERS = ("channel_post", "group_chat", "one_line_call")


@pytest.fixture(scope="module")
def posts():
    """Up to 25 posts of each label in three registers, and ten posts with no register."""
    chosen = []
    bundled = load_corpus([BUNDLED_DATA_DIR])
    for register in REGISTERS:
        for label in ("ico", "trading_service", "benign"):
            chosen += [p for p in bundled if p.register == register and p.label == label][:25]
    chosen += [LabelledPost(p.text, p.label, p.lang) for p in bundled if p.register == "x_post"][:10]
    return chosen


@pytest.fixture
def fitted_on(monkeypatch):
    """The normalized texts of every fit's training posts, in order of the splits."""
    seen = []
    real = generalisation.fit_and_predict_all

    def spy(splits, *args, **kwargs):
        seen.extend({post.normalized for post in split.train} for split in splits)
        return real(splits, *args, **kwargs)

    monkeypatch.setattr(generalisation, "fit_and_predict_all", spy)
    return seen


def test_each_register_is_predicted_by_a_model_that_never_saw_it(posts, fitted_on):
    result = leave_one_out(posts, "register", log=lambda m: None)
    assert list(result["groups"]) == list(REGISTERS)
    assert len(fitted_on) == 3
    normalized = {p.text: post.normalized for p, post in zip(posts, prepare_many([p.text for p in posts]))}
    untagged = {normalized[p.text] for p in posts if not p.register}
    for register, seen in zip(REGISTERS, fitted_on):
        held = {normalized[p.text] for p in posts if p.register == register}
        assert not held & seen and untagged <= seen
        assert result["groups"][register]["posts"] == len(held)
    assert result["posts"] == sum(1 for p in posts if p.register)
    assert 0.0 <= result["macro_f1"] <= 1.0
    assert set(result["recall"]) == {"ico", "trading_service", "benign"}


def test_a_genre_is_measured_by_the_recall_of_its_label(posts):
    result = leave_one_out(posts, "genre", log=lambda m: None)
    for genre, figures in result["groups"].items():
        labels = {p.label for p in posts if p.genre == genre}
        assert set(figures["recall"]) == labels and len(labels) == 1
        assert "macro_f1" not in figures
    markdown = leave_one_out_markdown(result)
    assert "### Leave-one-genre-out (svm)" in markdown
    assert all(f"| `{genre}` |" in markdown for genre in result["groups"])


def test_each_source_file_is_predicted_by_a_model_that_never_saw_it(posts, fitted_on):
    result = leave_one_out(posts, "source", log=lambda m: None)
    sources = sorted({p.source for p in posts if p.source})
    assert list(result["groups"]) == sources and len(sources) > 3
    normalized = {p.text: post.normalized for p, post in zip(posts, prepare_many([p.text for p in posts]))}
    assert len(fitted_on) == len(sources)
    for source, seen in zip(sources, fitted_on):
        held = {normalized[p.text] for p in posts if p.source == source}
        assert not held & seen
        assert result["groups"][source]["posts"] == len(held)
    assert result["posts"] == sum(1 for p in posts if p.source)
    assert "### Leave-one-source-out (svm)" in leave_one_out_markdown(result)


def test_a_group_holding_a_whole_label_stays_in_training(posts):
    # Every benign post moved into group_chat: without group_chat there would be nothing benign to learn.
    moved = [
        LabelledPost(
            p.text, p.label, p.lang, genre=p.genre, register="group_chat" if p.label == "benign" else p.register
        )
        for p in posts
        if p.register
    ]
    messages = []
    result = leave_one_out(moved, "register", log=messages.append)
    assert set(result["groups"]) == {"channel_post", "one_line_call"}
    assert any("group_chat: left in" in m for m in messages)


def test_nothing_to_leave_out_gives_no_figures(posts):
    # One corpus file holds every label: leaving it out would leave nothing to learn from.
    messages = []
    one_file = [LabelledPost(p.text, p.label, p.lang, source="only") for p in posts]
    assert leave_one_out(one_file, "source", log=messages.append) is None
    assert any("only: left in" in m for m in messages)


def test_an_unknown_grouping_is_refused(posts):
    with pytest.raises(ValueError, match="by must be one of register, genre"):
        leave_one_out(posts, "language")
