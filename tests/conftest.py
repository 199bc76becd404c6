"""Shared fixtures. The trained model is built once per test session from the bundled corpus."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from classifier.train import train_and_save


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """Path of a model trained from the bundled training_data/ (the first-use path of the product).

    Training takes a minute or two; a developer running single test files repeatedly may set
    COMPLIANCE_TEST_MODEL to a model already trained from this tree's corpus, which is copied (tests may
    replace the file). CI never sets it, so the suite always exercises first-use training.
    """
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    reuse = os.environ.get("COMPLIANCE_TEST_MODEL")
    if reuse:
        shutil.copyfile(reuse, path)
        manifest = Path(reuse).with_suffix(".manifest.json")
        if manifest.exists():
            shutil.copyfile(manifest, path.with_suffix(".manifest.json"))
    else:
        train_and_save(path, log=lambda message: None)
    return path


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """60 posts of each label from the bundled corpus as one JSONL file: enough to train in about a second.
    Spread over the whole corpus, not its first files: the first 60 benign posts of the sorted files are
    one writer's exchange announcements, too narrow a sample for the tests that train on it."""
    import json

    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus

    posts = load_corpus([BUNDLED_DATA_DIR])
    path = tmp_path_factory.mktemp("corpus") / "small.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for label in ("ico", "trading_service", "benign"):
            of_label = [p for p in posts if p.label == label]
            for post in of_label[:: len(of_label) // 60][:60]:
                handle.write(
                    json.dumps({"text": post.text, "label": label, "lang": post.lang}, ensure_ascii=False) + "\n"
                )
    return path


@pytest.fixture(scope="session")
def noisy_extra(small_corpus, tmp_path_factory):
    """A copy of every post of the small corpus that differs only by invisible characters (the model reads it
    as the same post), labelled as another label, and kept outside the gate's held-out split: a model trained
    on them reads the held-out posts worse, whatever its thresholds, than the current model."""
    import json

    from classifier.train import in_heldout

    another = {"ico": "trading_service", "trading_service": "benign", "benign": "ico"}
    path = tmp_path_factory.mktemp("noise") / "noisy.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for line in small_corpus.read_text(encoding="utf-8").splitlines():
            post = json.loads(line)
            text = next(t for n in range(1, 20) if not in_heldout(t := post["text"] + "\u200b" * n))
            out.write(json.dumps(post | {"text": text, "label": another[post["label"]]}, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="session")
def tagged_corpus(tmp_path_factory):
    """Eight posts of each label in each register, with their genre and register, as one JSONL file."""
    import json

    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
    from classifier.genres import REGISTERS

    posts = load_corpus([BUNDLED_DATA_DIR])
    path = tmp_path_factory.mktemp("corpus") / "tagged.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for label in ("ico", "trading_service", "benign"):
            for register in REGISTERS:
                for post in [p for p in posts if p.label == label and p.register == register][:8]:
                    handle.write(
                        json.dumps(
                            {
                                "text": post.text,
                                "label": label,
                                "lang": post.lang,
                                "genre": post.genre,
                                "register": register,
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
    return path


@pytest.fixture(scope="session")
def trained_model(model_path):
    from classifier import load_model

    return load_model(model_path)


# -- the bot: settings, an in-memory Telegram and a harness around the PTB application ----------------

MODERATOR_CHAT_ID = -1007777777777
# A chat title or user name that Telegram apps would turn into links if it stood in plain text.
LINK_BAIT = "Free t.me/scam and @scam_bot"


def interruptible() -> None:
    """``preexec_fn`` for a CLI process a test presses Ctrl-C on: SIGINT at its default, as a terminal
    gives it. A shell without job control (a CI script's ``cmd &``) starts background jobs with SIGINT
    ignored, an ignored signal stays ignored through exec, and Python then never raises
    KeyboardInterrupt: the test would measure the shell that started it, not the CLI."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def outside_code(html: str) -> str:
    """What of an HTML message Telegram may auto-link: everything outside <code> and <pre>."""
    import re

    return re.sub(r"<(code|pre)>.*?</\1>", "", html, flags=re.S)


TEST_TOKEN = "123456:TEST-token-never-logged"


def make_settings(tmp_path, **overrides):
    from bot.settings import Settings

    values = dict(
        telegram_bot_token=TEST_TOKEN,
        telegram_api_url="http://fake.invalid/bot",
        moderator_chat_id=MODERATOR_CHAT_ID,
        moderator_user_ids=frozenset({111}),
        database_path=tmp_path / "bot.db",
        model_path=tmp_path / "model.joblib",
        alert_threshold=0.8,
        digest_interval_minutes=60,
    )
    return Settings(_env_file=None, **(values | overrides))


class BotHarness:
    """A built application over an in-memory Bot API; `send` processes one raw update, `flush` runs the outbox."""

    def __init__(self, app, api, storage, classifier):
        self.app, self.api, self.storage, self.classifier = app, api, storage, classifier

    @property
    def services(self):
        return self.app.bot_data["services"]

    async def send(self, update: dict) -> None:
        from telegram import Update

        update = {"update_id": len(self.api.calls) + 10_000} | update
        await self.app.process_update(Update.de_json(update, self.app.bot))

    async def flush(self) -> int:
        return await self.services.outbox.flush(self.app.bot, self.services.secret)

    def sent_texts(self, chat_id=MODERATOR_CHAT_ID) -> list[str]:
        return [c.params["text"] for c in self.api.calls_to("sendMessage") if c.params["chat_id"] == chat_id]


@pytest.fixture
async def bot_factory(tmp_path):
    """Builds harnesses (fake classifier, file database in tmp_path) and shuts them down after the test."""
    from bot.app import build_application
    from bot.storage import Storage
    from tests.fakes.bot_api import FakeBotApi, InMemoryRequest
    from tests.fakes.classifier import FakeClassifier

    built = []

    async def make(classifier=None, storage=None, loader=None, **overrides) -> BotHarness:
        settings = make_settings(tmp_path, **overrides)
        api = FakeBotApi()
        storage = storage or Storage.open(settings.database_path)
        classifier = classifier or FakeClassifier()
        app = build_application(settings, classifier, storage, loader=loader, request=InMemoryRequest(api))
        await app.initialize()
        built.append(app)
        return BotHarness(app, api, storage, classifier)

    yield make
    for app in built:
        await app.shutdown()


@pytest.fixture
async def harness(bot_factory):
    return await bot_factory()


# -- end to end: the fake Bot API over HTTP and the real `compliance-bot run` process -------------------


@pytest.fixture
def server():
    """The fake Bot API server on 127.0.0.1, stopped after the test."""
    from tests.fakes.bot_api import FakeBotApiServer

    s = FakeBotApiServer().start()
    yield s
    s.stop()


@pytest.fixture
def run_bot(server, tmp_path, model_path):
    """Starts `compliance-bot run` processes against ``server``; stops them and checks their logs for the token."""
    from tests.test_app_e2e import BotProcess

    started = []

    def start(**env):
        bot = BotProcess(server, tmp_path, model_path, **env)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.stop()
        assert TEST_TOKEN not in bot.log(), "the token leaked into the log"


# -- bulk-scan (issue 13): a Dask cluster of two worker processes on 127.0.0.1 ---------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    """A LocalCluster of two single-threaded worker processes, shared by the tests of one module."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        yield cluster


# -- the web preview source: a fake t.me serving public channel pages over HTTP on 127.0.0.1 ------------------


@pytest.fixture
def web_preview():
    """The fake t.me web preview (tests/fakes/web_preview.py), stopped after the test."""
    from tests.fakes.web_preview import FakeWebPreview

    fake = FakeWebPreview().start()
    yield fake
    fake.stop()


# -- pictures: text read from images (OCR) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def ocr_engine():
    """The real OCR engine (rapidocr-onnxruntime), its models loaded once for the session: reading costs seconds."""
    from bot.image_text import RapidOcrEngine

    return RapidOcrEngine()


@pytest.fixture(scope="session")
def picture_posts(trained_model):
    """Corpus posts to render as pictures: an English ICO pitch, a Chinese trading-service post and an English
    crypto-news post (a hard negative), each one the model classifies right as plain text."""
    from classifier.corpus import BUNDLED_DATA_DIR, load_corpus
    from tests.fakes.images import renderable

    posts = load_corpus([BUNDLED_DATA_DIR])

    def pick(label, lang, low, high, hard=None):
        return next(
            p.text
            for p in posts
            if p.label == label
            and p.lang == lang
            and (hard is None or p.hard == hard)
            and low <= len(p.text) <= high
            and renderable(p.text)
            and trained_model.predict(p.text).label == label
        )

    return {
        "ico_en": pick("ico", "en", 90, 200),
        "trading_service_zh": pick("trading_service", "zh", 30, 90),
        "benign_en": pick("benign", "en", 90, 200, hard=True),
    }
