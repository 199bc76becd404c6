import json
import shutil

import pytest

from classifier.persistence import ModelLoadError, load_model, manifest_path
from classifier.train import load_or_train


@pytest.fixture
def model_copy(model_path, tmp_path):
    target = tmp_path / "model.joblib"
    shutil.copy(model_path, target)
    shutil.copy(manifest_path(model_path), manifest_path(target))
    return target


def test_manifest_describes_the_model(model_path, trained_model):
    manifest = json.loads(manifest_path(model_path).read_text())
    assert manifest["model_version"] == trained_model.version
    assert manifest["labels"] == ["ico", "trading_service", "benign"]
    assert len(manifest["sha256"]) == 64 and len(manifest["training_data_sha256"]) == 64
    assert {"sklearn_version", "created_at", "metrics", "thresholds"} <= set(manifest)
    assert 0 < manifest["metrics"]["macro_f1"] <= 1


def test_load_round_trip_predicts_the_same(model_copy, trained_model):
    loaded = load_model(model_copy)
    text = "Presale live: 1 ETH = 20,000 $ZAP, buy now"
    assert loaded.predict(text) == trained_model.predict(text)


def test_tampered_file_is_refused(model_copy):
    with open(model_copy, "ab") as handle:
        handle.write(b"\x00evil")
    with pytest.raises(ModelLoadError, match="does not match its manifest"):
        load_model(model_copy)


def test_other_sklearn_version_is_refused(model_copy):
    path = manifest_path(model_copy)
    manifest = json.loads(path.read_text())
    manifest["sklearn_version"] = "0.24.2"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="scikit-learn 0.24.2"):
        load_model(model_copy)


def test_missing_or_broken_manifest_is_refused(model_copy):
    path = manifest_path(model_copy)
    path.write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(model_copy)
    path.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(model_copy)


def test_corrupt_pickle_with_matching_hash_is_refused(tmp_path):
    from classifier.persistence import file_sha256

    path = tmp_path / "model.joblib"
    path.write_bytes(b"this is not a pickle")
    import sklearn

    manifest_path(path).write_text(
        json.dumps(
            {
                "sha256": file_sha256(path),
                "sklearn_version": sklearn.__version__,
                "labels": ["ico", "trading_service", "benign"],
            }
        )
    )
    with pytest.raises(ModelLoadError, match="could not be read"):
        load_model(path)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="compliance-bot train"):
        load_model(tmp_path / "none.joblib")


def test_load_or_train_loads_an_existing_model_without_training(model_copy):
    messages = []
    model = load_or_train(model_copy, log=messages.append)
    assert messages == [] and model.version
