"""The application as `compliance-bot run` builds it, in-process: what run_bot sets up before serving updates."""

import sqlite3
import time

from bot.post import Post
from tests.fakes.classifier import FakeClassifier


def test_a_locked_database_fails_a_write_fast_and_keeps_the_scan(monkeypatch, tmp_path, model_path):
    from telegram.ext import Application

    import bot.app
    from bot.scan_store import retry_unsaved, save
    from bot.settings import load_settings

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_API_URL": "http://127.0.0.1:9/bot",
        "MODERATOR_CHAT_ID": "-100123",
        "MODERATOR_USER_IDS": "111",
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "MODEL_PATH": str(model_path),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(bot.app, "configure_logging", lambda token: None)
    seen = {}

    def serve(app, **kwargs):  # stands in for polling: the services are built as the live bot has them
        svc = app.bot_data["services"]
        post = Post(-1001, 1, "Presale now")
        blocker = sqlite3.connect(tmp_path / "bot.db")
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            start = time.monotonic()
            seen["saved"] = save(svc, post, FakeClassifier().predict(post.text))
            seen["seconds"] = time.monotonic() - start  # the event loop is blocked this long
        finally:
            blocker.rollback()
            blocker.close()
        seen["retried"] = retry_unsaved(svc)
        seen["stored"] = svc.storage.post(-1001, 1) is not None
        svc.storage.close()

    monkeypatch.setattr(Application, "run_polling", serve)
    bot.app.run_bot(load_settings())
    assert seen["saved"] is False and seen["seconds"] < 0.5
    assert seen["retried"] == 1 and seen["stored"]  # kept in memory, stored once the lock was gone
