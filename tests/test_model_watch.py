"""The running bot swaps in a model file replaced by train or rollback, and keeps its model when the new one is bad."""

from __future__ import annotations

import shutil

from bot.model_watch import ModelWatcher
from classifier import load_model, manifest_path
from tests.fakes import updates as U


def copy_model(source, target):
    shutil.copyfile(source, target)
    shutil.copyfile(manifest_path(source), manifest_path(target))


async def test_a_replaced_model_is_swapped_in_between_posts_and_a_broken_one_is_not(bot_factory, model_path, tmp_path):
    target = tmp_path / "model.joblib"  # the harness's MODEL_PATH
    harness = await bot_factory()  # starts with the fake classifier; no model file yet
    svc = harness.services
    assert await svc.model_watcher.check(svc) is False
    await harness.send(U.channel_post(1, "Presale live"))
    copy_model(model_path, target)
    assert await svc.model_watcher.check(svc) is True
    real = load_model(target)
    assert svc.classifier.version == real.version
    await harness.send(U.channel_post(2, "Presale of $MOON ends Friday, buy at moon-sale.example"))
    assert [harness.storage.post(U.CHANNEL["id"], n)["model_version"] for n in (1, 2)] == ["fake-1", real.version]
    assert await svc.model_watcher.check(svc) is False  # nothing changed

    target.write_bytes(target.read_bytes()[:-100])  # a damaged file: sha256 no longer matches the manifest
    assert await svc.model_watcher.check(svc) is False
    assert svc.classifier.version == real.version
    await harness.send(U.channel_post(3, "VIP signals"))
    assert harness.storage.post(U.CHANNEL["id"], 3)["model_version"] == real.version


def test_the_watcher_needs_both_files(tmp_path):
    watcher = ModelWatcher(tmp_path / "model.joblib", load=lambda: None)
    assert watcher.signature() is None
    (tmp_path / "model.joblib").write_bytes(b"x")
    assert watcher.signature() is None  # no manifest yet: not a model to load
