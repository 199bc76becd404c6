import json

import numpy as np
import pytest

from classifier import load_model, manifest_path
from classifier.corpus import LabelledPost, load_corpus
from classifier.generalisation import OutOfGroup
from classifier.train import (
    GateRefused,
    in_heldout,
    main,
    merge_reviewed,
    train,
    train_and_save,
    tune_out_of_register,
    tune_thresholds,
)
from classifier.versions import VersionError, install, list_versions, previous_version, read_snapshot, version_dir


def quiet(message):
    pass


def test_thresholds_are_tuned_on_out_of_fold_predictions():
    classes = ["benign", "ico", "trading_service"]
    # ico posts score 0.35 on ico, benign posts 0.25: only a threshold between them separates them.
    y = ["ico"] * 10 + ["benign"] * 10
    probabilities = np.array([[0.6, 0.35, 0.05]] * 10 + [[0.7, 0.25, 0.05]] * 10)
    thresholds = tune_thresholds(y, probabilities, classes)
    assert 0.25 < thresholds["ico"] <= 0.35


def test_near_ties_go_to_the_lower_thresholds():
    classes = ["benign", "ico", "trading_service"]

    def tuned(ico_scores, benign_scores):
        rows = [[1 - s, s, 0.0] for s in ico_scores + benign_scores]
        return tune_thresholds(["ico"] * len(ico_scores) + ["benign"] * len(benign_scores), np.array(rows), classes)

    # Two more ico posts caught for three benign ones flagged: macro-F1 lower by 0.0017, a tie → recall.
    assert tuned([0.8] * 198 + [0.32] * 2, [0.1] * 197 + [0.32] * 3)["ico"] <= 0.30
    # Ten benign posts flagged for the same two is not a tie: the higher threshold keeps them out.
    assert tuned([0.8] * 198 + [0.32] * 2, [0.1] * 190 + [0.32] * 10)["ico"] >= 0.35


def test_thresholds_are_tuned_out_of_register_when_registers_are_left_out():
    classes = ["benign", "ico", "trading_service"]
    posts = [
        LabelledPost(f"p{i}", "ico" if i < 10 else ("trading_service" if i < 20 else "benign"), "en") for i in range(30)
    ]
    # In cross-validation promotion scores 0.8 and benign 0.4: only thresholds above 0.4 separate them there.
    # Out of register promotion scores only 0.35, benign 0.125.
    benign = [0.75, 0.125, 0.125]
    cv = np.array([[0.1, 0.8, 0.1]] * 10 + [[0.1, 0.1, 0.8]] * 10 + [[0.2, 0.4, 0.4]] * 10)
    oog = np.array([[0.3, 0.35, 0.3]] * 10 + [[0.3, 0.3, 0.35]] * 10 + [benign] * 10)
    measured = OutOfGroup(oog, classes, np.array(["group_chat"] * 30, dtype=object))
    thresholds, tuned_on = tune_out_of_register(posts, measured, cv, classes)
    assert tuned_on == "leave-one-register-out predictions"
    assert 0.125 < thresholds["ico"] <= 0.35 and 0.125 < thresholds["trading_service"] <= 0.35
    # Without a register left out (no post measured), the cross-validated predictions decide.
    unmeasured = OutOfGroup(np.zeros((30, 3)), classes, np.array([""] * 30, dtype=object))
    thresholds, tuned_on = tune_out_of_register(posts, unmeasured, cv, classes)
    assert tuned_on == "cross-validated predictions" and thresholds["ico"] > 0.35


def test_training_tunes_on_registers_left_out_and_reports_them(tagged_corpus, small_corpus):
    tagged = train(load_corpus([tagged_corpus]), log=quiet)
    assert tagged.metrics["thresholds"] == {
        "values": tagged.thresholds,
        "tuned_on": "leave-one-register-out predictions",
    }
    assert tagged.metrics["leave_one_out"]["register"]["thresholds"] == tagged.thresholds
    untagged = train(load_corpus([small_corpus]), log=quiet)
    assert untagged.metrics["thresholds"]["tuned_on"] == "cross-validated predictions"
    assert untagged.metrics["leave_one_out"] == {}


def test_training_writes_model_manifest_and_reports(small_corpus, tmp_path):
    model_path = tmp_path / "model.joblib"
    result = train_and_save(model_path, data=[small_corpus], log=quiet)
    assert load_model(model_path).version == result.model.version
    reports = tmp_path / "reports"
    assert {p.name for p in reports.iterdir()} == {"training.json", "training.md", "training.png"}
    figures = json.loads((reports / "training.json").read_text())
    assert set(figures["per_label"]) == {"ico", "trading_service", "benign"}
    assert figures["confusion_matrix"]["labels"] == ["ico", "trading_service", "benign"]
    assert (reports / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quality_gate_compares_on_the_same_heldout_split_and_keeps_the_better_model(
    small_corpus, noisy_extra, tmp_path
):
    model_path = tmp_path / "model.joblib"
    first = train_and_save(model_path, data=[small_corpus], log=quiet)
    assert first.gate["method"] == "no current model"
    before = model_path.read_bytes()
    with pytest.raises(GateRefused, match="would drop from") as refused:
        train_and_save(model_path, data=[small_corpus], extra=[noisy_extra], log=quiet)
    gate = refused.value.result.gate
    assert gate["method"] == "same held-out split" and gate["current_version"] == first.model.version
    assert gate["candidate_macro_f1"] < gate["current_macro_f1"] - 0.01
    # Both were scored on the same held-out texts: about a fifth of the corpus's posts (the noise is kept out
    # of the split by construction, so it only adds to the training side), none trained on.
    corpus_posts = len(small_corpus.read_text(encoding="utf-8").splitlines())
    assert 0.1 < gate["heldout_posts"] / corpus_posts < 0.3
    assert gate["heldout_posts"] + gate["candidate_train_posts"] == 2 * corpus_posts
    assert model_path.read_bytes() == before and len(list_versions(model_path)) == 1
    report = json.loads((tmp_path / "reports" / "training.json").read_text())
    assert report["gate"]["refusal"].startswith("macro-F1 would drop")

    forced = train_and_save(model_path, data=[small_corpus], extra=[noisy_extra], force=True, log=quiet)
    assert forced.gate["forced"] is True and model_path.read_bytes() != before
    assert [v["model_version"] for v in list_versions(model_path)] == [first.model.version, forced.model.version]
    assert load_model(model_path).version == forced.model.version


def test_an_equal_model_passes_and_every_installed_version_is_kept(small_corpus, tmp_path):
    model_path = tmp_path / "model.joblib"
    first = train_and_save(model_path, data=[small_corpus], log=quiet)
    second = train_and_save(model_path, data=[small_corpus], log=quiet)
    assert second.gate["refusal"] is None and second.gate["candidate_macro_f1"] == second.gate["current_macro_f1"]
    assert second.model.version != first.model.version  # unique even within one second
    kept = list_versions(model_path)
    assert [(v["model_version"], v["installed"], v["has_snapshot"]) for v in kept] == [
        (first.model.version, False, True),
        (second.model.version, True, True),
    ]
    snapshot = read_snapshot(version_dir(model_path, second.model.version) / "training.jsonl.gz")
    assert len(snapshot) == second.posts == 180
    assert previous_version(model_path) == first.model.version
    install(model_path, first.model.version)
    assert load_model(model_path).version == first.model.version
    with pytest.raises(VersionError, match="oldest kept version"):
        previous_version(model_path)
    with pytest.raises(VersionError, match="no kept model version 'nope'"):
        install(model_path, "nope")


def test_a_model_without_snapshot_is_compared_by_its_manifest(small_corpus, tmp_path):
    model_path = tmp_path / "model.joblib"
    first = train_and_save(model_path, data=[small_corpus], log=quiet)
    (version_dir(model_path, first.model.version) / "training.jsonl.gz").unlink()
    manifest = json.loads(manifest_path(model_path).read_text())
    manifest["metrics"]["macro_f1"] = first.metrics["macro_f1"] + 0.05  # pretend the current model is better
    manifest_path(model_path).write_text(json.dumps(manifest))
    with pytest.raises(GateRefused, match="cross-validated macro-F1 from the manifests"):
        train_and_save(model_path, data=[small_corpus], log=quiet)


def test_reviews_override_the_corpus_and_are_counted():
    corpus = [
        LabelledPost("a", "ico", "en"),
        LabelledPost("b", "benign", "en", hard=True),
        LabelledPost("c", "ico", "en"),
    ]
    reviewed = [
        LabelledPost("a", "benign", "en"),
        LabelledPost("b", "benign", "en"),
        LabelledPost("d", "ico", "en"),
        LabelledPost("c", "benign", "en"),
        LabelledPost("c", "ico", "en"),
    ]  # the later review of "c" wins
    posts, used, conflicts = merge_reviewed(corpus, reviewed)
    assert {p.text: p.label for p in posts} == {"a": "benign", "b": "benign", "c": "ico", "d": "ico"}
    assert (used, conflicts) == (4, 1)  # only "a" disagrees with the corpus in the end
    assert [p.hard for p in posts if p.text == "b"] == [True]  # a confirmed hard negative stays hard


def test_the_heldout_split_is_stable_and_about_a_fifth():
    texts = [f"post number {i}" for i in range(2000)]
    share = sum(map(in_heldout, texts)) / len(texts)
    assert 0.17 < share < 0.23
    assert [in_heldout(t) for t in texts[:50]] == [in_heldout(t) for t in texts[:50]]


def test_extra_data_with_bad_lines_is_used_and_the_bad_lines_named(small_corpus, tmp_path, capsys):
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        '{"text": "Stage 2 presale of $QOR closes tonight, buy at qor-sale.example", "label": "ico"}\n'
        '{"text": "broken\n'
        '{"text": "ok", "label": "spam"}\n'
        '{"label": "ico"}\n',
        encoding="utf-8",
    )
    code = main(["--data", str(small_corpus), "--extra", str(extra), "--model", str(tmp_path / "m.joblib")])
    out = capsys.readouterr().out
    assert code == 1
    assert "extra.jsonl:2: not valid JSON" in out
    assert "extra.jsonl:3: \"label\" must be one of ico, trading_service, benign, got 'spam'" in out
    assert 'extra.jsonl:4: missing "text"' in out
    assert load_model(tmp_path / "m.joblib").manifest["training_posts"] == 181


def test_too_little_data_is_a_clear_error(tmp_path, capsys):
    data = tmp_path / "tiny.jsonl"
    data.write_text('{"text": "hello", "label": "benign"}\n')
    assert main(["--data", str(data), "--model", str(tmp_path / "m.joblib")]) == 2
    assert "too few posts labelled ico, trading_service" in capsys.readouterr().err


def test_leave_one_out_figures_go_into_the_training_report(tagged_corpus, tmp_path):
    model_path = tmp_path / "model.joblib"
    messages = []
    result = train_and_save(model_path, data=[tagged_corpus], leave_out=("register", "genre"), log=messages.append)
    loo = result.metrics["leave_one_out"]
    assert set(loo) == {"register", "genre"}
    assert set(loo["register"]["groups"]) == {
        "channel_post",
        "group_chat",
        "x_post",
        "social_comment",
        "private_pitch",
        "one_line_call",
    }
    # Measured with the thresholds training chose, not the defaults.
    assert loo["register"]["thresholds"] == result.thresholds
    report = (tmp_path / "reports" / "training.md").read_text(encoding="utf-8")
    assert "### Leave-one-register-out (svm)" in report and "### Leave-one-genre-out (svm)" in report
    manifest = json.loads(manifest_path(model_path).read_text())
    assert set(manifest["leave_one_out_macro_f1"]) == {"register", "genre"}
    assert any(m.startswith("Leave-one-register-out") for m in messages)
