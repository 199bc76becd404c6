"""Model versions kept beside the installed model, and the training snapshot each one was fitted on.

    data/model.joblib                       the installed model (what the bot loads) …
    data/model.manifest.json                … and its manifest
    data/models/<version>/model.joblib      every model that was installed, newest versions kept
    data/models/<version>/model.manifest.json
    data/models/<version>/training.jsonl.gz the posts it was trained on (text, label, lang, hard)

Installing a version copies its two files over the installed pair (model first, manifest last, each
atomically), so a running bot that watches the installed files sees one consistent switch. The snapshot
lets the quality gate refit the current recipe on the current model's own data, minus a held-out split.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from classifier.corpus import LabelledPost
from classifier.persistence import atomic_write, manifest_path

KEEP_VERSIONS = 10
SNAPSHOT_NAME = "training.jsonl.gz"
MODEL_NAME = "model.joblib"


class VersionError(Exception):
    """A version cannot be listed or installed; the message says why."""


def versions_dir(model_path: Path) -> Path:
    return Path(model_path).parent / "models"


def version_dir(model_path: Path, version: str) -> Path:
    return versions_dir(model_path) / version


def write_snapshot(path: Path, posts: Iterable[LabelledPost]) -> None:
    """The training posts as gzipped JSONL, written atomically."""

    def write(tmp: Path) -> None:
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as handle:
            for post in posts:
                handle.write(
                    json.dumps(
                        {"text": post.text, "label": post.label, "lang": post.lang, "hard": post.hard},
                        ensure_ascii=False,
                    )
                    + "\n"
                )

    atomic_write(Path(path), write)


def read_snapshot(path: Path) -> list[LabelledPost]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [
            LabelledPost(
                text=o["text"], label=o["label"], lang=o.get("lang", "en"), hard=bool(o.get("hard")), source="snapshot"
            )
            for o in map(json.loads, handle)
        ]


def snapshot_of(model_path: Path, version: str | None) -> Path | None:
    """The training snapshot of a kept version, if there is one."""
    if not version:
        return None
    path = version_dir(model_path, version) / SNAPSHOT_NAME
    return path if path.exists() else None


def unique_version(model_path: Path, version: str) -> str:
    """`version`, or `version-2`, `-3`… when a kept version already has that name (two runs in one second)."""
    candidate, n = version, 1
    while version_dir(model_path, candidate).exists():
        n += 1
        candidate = f"{version}-{n}"
    return candidate


def install(model_path: Path, version: str) -> dict:
    """Copy a kept version over the installed model; returns its manifest."""
    model_path = Path(model_path)
    source = version_dir(model_path, version)
    if not (source / MODEL_NAME).exists() or not manifest_path(source / MODEL_NAME).exists():
        known = ", ".join(v["model_version"] for v in list_versions(model_path)) or "none"
        raise VersionError(f"no kept model version {version!r} in {versions_dir(model_path)} (kept: {known})")
    manifest = json.loads(manifest_path(source / MODEL_NAME).read_text(encoding="utf-8"))
    atomic_write(model_path, lambda tmp: shutil.copyfile(source / MODEL_NAME, tmp))
    installed = manifest | {"file": model_path.name}
    atomic_write(
        manifest_path(model_path),
        lambda tmp: tmp.write_text(json.dumps(installed, indent=2, ensure_ascii=False), encoding="utf-8"),
    )
    return installed


def installed_version(model_path: Path) -> str | None:
    mpath = manifest_path(Path(model_path))
    try:
        return json.loads(mpath.read_text(encoding="utf-8")).get("model_version")
    except (OSError, ValueError):
        return None


def list_versions(model_path: Path) -> list[dict]:
    """Manifests of the kept versions, oldest first, each with ``installed`` and ``has_snapshot`` added."""
    root = versions_dir(model_path)
    current = installed_version(model_path)
    found = []
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        mpath = manifest_path(directory / MODEL_NAME)
        if not mpath.exists():
            continue
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except ValueError:
            continue
        manifest = {"model_version": directory.name} | manifest
        manifest["installed"] = manifest["model_version"] == current
        manifest["has_snapshot"] = (directory / SNAPSHOT_NAME).exists()
        found.append(manifest)
    return sorted(found, key=lambda m: (m.get("created_at", ""), m["model_version"]))


def previous_version(model_path: Path) -> str:
    """The kept version installed before the current one (the newest older than it)."""
    versions = [v["model_version"] for v in list_versions(model_path)]
    current = installed_version(model_path)
    if current in versions:
        older = versions[: versions.index(current)]
        if not older:
            raise VersionError(f"{current} is the oldest kept version; nothing to roll back to")
        return older[-1]
    if not versions:
        raise VersionError(f"no kept model versions in {versions_dir(model_path)}")
    return versions[-1]


def prune(model_path: Path, keep: int = KEEP_VERSIONS) -> list[str]:
    """Remove the oldest kept versions beyond ``keep``; the installed one is never removed."""
    current = installed_version(model_path)
    versions = [v["model_version"] for v in list_versions(model_path)]
    removed = []
    for version in versions[: max(0, len(versions) - keep)]:
        if version != current:
            shutil.rmtree(version_dir(model_path, version), ignore_errors=True)
            removed.append(version)
    return removed
