"""Saving and loading a model with joblib, and the manifest that vouches for the file.

The manifest sits beside the model (``model.joblib`` → ``model.manifest.json``) and records the file's
sha256, the scikit-learn version, the labels, the training-data hash, the metrics and the creation time.
Loading checks the hash *before* unpickling, because unpickling a tampered file can run arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import joblib
import sklearn

from classifier.labels import LABELS
from classifier.model import PromotionClassifier


class ModelLoadError(Exception):
    """The model file cannot be trusted or used; the message says why and what to do."""


def manifest_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".manifest.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(classifier: PromotionClassifier, path: Path, manifest: dict) -> dict:
    """Write the model and its manifest (model first, so a crash never leaves a manifest without it)."""
    path = Path(path)
    atomic_write(path, lambda tmp: joblib.dump(classifier, tmp, compress=3))
    full = {
        "model_version": classifier.version,
        "file": path.name,
        "sha256": file_sha256(path),
        "sklearn_version": sklearn.__version__,
        "labels": list(LABELS),
        "thresholds": classifier.thresholds,
        **manifest,
    }
    atomic_write(manifest_path(path), lambda tmp: tmp.write_text(json.dumps(full, indent=2, ensure_ascii=False)))
    classifier.manifest = full
    return full


def read_manifest(path: Path) -> dict:
    mpath = manifest_path(path)
    if not mpath.exists():
        raise ModelLoadError(
            f"{mpath} is missing: a model is only loaded with its manifest; retrain with `compliance-bot train`"
        )
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{mpath} is not valid JSON ({exc}); retrain with `compliance-bot train`") from None
    if not isinstance(manifest, dict) or "sha256" not in manifest:
        raise ModelLoadError(f"{mpath} has no sha256; retrain with `compliance-bot train`")
    return manifest


def load_model(path: Path) -> PromotionClassifier:
    """Load a model after checking its manifest; raises :class:`ModelLoadError` with the reason."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"no model at {path}; train one with `compliance-bot train`")
    manifest = read_manifest(path)
    actual = file_sha256(path)
    if actual != manifest["sha256"]:
        raise ModelLoadError(
            f"{path} does not match its manifest (sha256 {actual[:12]}… != {manifest['sha256'][:12]}…): "
            "the file was changed or corrupted; refusing to load it. Retrain with `compliance-bot train`"
        )
    if manifest.get("sklearn_version") != sklearn.__version__:
        raise ModelLoadError(
            f"{path} was built with scikit-learn {manifest.get('sklearn_version')}, this is {sklearn.__version__}; "
            "retrain with `compliance-bot train` (a model pickled by another version may predict wrongly)"
        )
    if manifest.get("labels") != list(LABELS):
        raise ModelLoadError(f"{path} knows labels {manifest.get('labels')}, expected {list(LABELS)}; retrain it")
    try:
        model = joblib.load(path)
    except Exception as exc:  # a truncated or foreign pickle raises anything from EOFError to KeyError
        raise ModelLoadError(
            f"{path} could not be read ({type(exc).__name__}); retrain with `compliance-bot train`"
        ) from None
    if not isinstance(model, PromotionClassifier):
        raise ModelLoadError(f"{path} holds a {type(model).__name__}, not a PromotionClassifier")
    model.manifest = manifest
    return model
