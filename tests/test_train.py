import json

import numpy as np
import pytest

from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
from classifier.persistence import load_model, manifest_path
from classifier.train import GateRefused, main, train_and_save, tune_thresholds


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """60 posts of each label from the bundled corpus: enough to train in about a second."""
    posts = load_corpus([BUNDLED_DATA_DIR])
    path = tmp_path_factory.mktemp("corpus") / "small.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for label in ("ico", "trading_service", "benign"):
            for post in [p for p in posts if p.label == label][:60]:
                handle.write(json.dumps({"text": post.text, "label": label, "lang": post.lang}, ensure_ascii=False) + "\n")
    return path


def quiet(message):
    pass


def test_thresholds_are_tuned_on_out_of_fold_predictions():
    classes = ["benign", "ico", "trading_service"]
    # ico posts score 0.35 on ico, benign posts 0.25: only a threshold between them separates them.
    y = ["ico"] * 10 + ["benign"] * 10
    probabilities = np.array([[0.6, 0.35, 0.05]] * 10 + [[0.7, 0.25, 0.05]] * 10)
    thresholds = tune_thresholds(y, probabilities, classes)
    assert 0.25 < thresholds["ico"] <= 0.35


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


def test_quality_gate_keeps_a_better_model_unless_forced(small_corpus, tmp_path):
    model_path = tmp_path / "model.joblib"
    first = train_and_save(model_path, data=[small_corpus], log=quiet)
    manifest = json.loads(manifest_path(model_path).read_text())
    manifest["metrics"]["macro_f1"] = first.metrics["macro_f1"] + 0.05  # pretend the current model is better
    manifest_path(model_path).write_text(json.dumps(manifest))
    before = model_path.read_bytes()
    with pytest.raises(GateRefused, match="would drop"):
        train_and_save(model_path, data=[small_corpus], log=quiet)
    assert model_path.read_bytes() == before
    train_and_save(model_path, data=[small_corpus], force=True, log=quiet)
    assert model_path.read_bytes() != before


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
