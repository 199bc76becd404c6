"""Shared fixtures. The trained model is built once per test session from the bundled corpus."""

from __future__ import annotations

import pytest

from classifier.train import train_and_save


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """Path of a model trained from the bundled training_data/ (the first-use path of the product)."""
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    train_and_save(path, log=lambda message: None)
    return path


@pytest.fixture(scope="session")
def trained_model(model_path):
    from classifier.persistence import load_model

    return load_model(model_path)
