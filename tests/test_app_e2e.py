"""End to end: the real `compliance-bot run` process, the real model, a fake Bot API over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MODERATOR_CHAT_ID, TEST_TOKEN
from tests.fakes import updates as U
from tests.fakes.bot_api import FakeBotApiServer

pytestmark = pytest.mark.slow

PROMO = ("Presale of $MOON ends Friday, 1 BNB = 50,000 MOON, buy now at moon-sale.example. "
         "Whitelist spots are limited, join the presale today!")
NEWS = "The SEC sued the organisers of a 2017 ICO, court filings show."


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def command_line() -> list[str]:
    script = Path(sys.executable).parent / "compliance-bot"
    if script.exists():
        return [str(script), "run"]
    return [sys.executable, "-c", "from bot.cli import cli; cli()", "run"]


def bot_env(server: FakeBotApiServer, workdir: Path, model_path: Path, **env) -> dict:
    """The environment of `compliance-bot run` against the fake server; a value of None leaves a variable out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MODERATOR_"))} | {
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN, "TELEGRAM_API_URL": server.base_url,
        "MODERATOR_CHAT_ID": str(MODERATOR_CHAT_ID), "MODERATOR_USER_IDS": "111,112",
        "DATABASE_PATH": str(workdir / "bot.db"), "MODEL_PATH": str(model_path),
        "OUTBOX_INTERVAL_SECONDS": "0.3", "DIGEST_INTERVAL_MINUTES": "600",
    } | env
    return {k: v for k, v in env.items() if v is not None}


def run_until_exit(server: FakeBotApiServer, workdir: Path, model_path: Path, **env) -> subprocess.CompletedProcess:
    """`compliance-bot run` expected to stop at start-up; its output is stdout and stderr together."""
    return subprocess.run(command_line(), cwd=workdir, env=bot_env(server, workdir, model_path, **env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)


class BotProcess:
    """One `compliance-bot run` against the fake server, with its stderr kept for inspection."""

    def __init__(self, server: FakeBotApiServer, workdir: Path, model_path: Path, **env):
        self.log_path = workdir / f"bot-{time.monotonic_ns()}.log"
        self.env = bot_env(server, workdir, model_path, **env)
        self.server = server
        self.proc = subprocess.Popen(command_line(), cwd=workdir, env=self.env, stdout=open(self.log_path, "w"),
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: server.api.calls_to("setMyCommands") or self.proc.poll() is not None, 60, "bot start-up")
        assert self.proc.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def alerts_sent(server) -> list:
    return [c for c in server.api.calls_to("sendMessage")
            if c.params["chat_id"] == MODERATOR_CHAT_ID and "alert #" in c.params["text"]]


def db_rows(tmp_path, sql):
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        return conn.execute(sql).fetchall()


def test_promoting_post_alerts_once_and_news_does_not(server, run_bot, tmp_path):
    bot = run_bot()
    server.api.push_update(U.channel_post(41, NEWS))
    server.api.push_update(U.channel_post(42, PROMO))
    alert = wait_for(lambda: alerts_sent(server), what="the alert")[0]
    wait_for(lambda: server.api.pending_updates() == 0 and len(db_rows(tmp_path, "SELECT * FROM posts")) == 2,
             what="both posts stored")
    time.sleep(1.5)  # several outbox rounds: nothing more may come
    assert len(alerts_sent(server)) == 1
    assert "https://t.me/cryptogems/42" in alert.params["text"] and "ICO" in alert.params["text"]
    buttons = alert.params["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["✅ Confirm", "❌ False positive", "↔ Trading service"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
    # The news post is stored as metadata only, the promotion with its text.
    rows = dict(db_rows(tmp_path, "SELECT message_id, label FROM posts"))
    assert rows == {41: "benign", 42: "ico"}
    assert db_rows(tmp_path, "SELECT text FROM posts WHERE message_id = 41") == [(None,)]
    assert server.tokens_seen == {TEST_TOKEN}
    assert "getUpdates" not in bot.log()  # httpx request lines (which carry the token) are silenced


def test_moderator_press_is_recorded_and_stranger_press_changes_nothing(server, run_bot, tmp_path):
    run_bot()
    server.api.push_update(U.channel_post(7, PROMO))
    alert = wait_for(lambda: alerts_sent(server), what="the alert")[0]
    confirm = alert.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    message = server.api.messages[(MODERATOR_CHAT_ID, max(k[1] for k in server.api.messages))]

    server.api.push_update(U.callback(confirm, U.STRANGER, message, query_id="stranger"))
    refusal = wait_for(lambda: server.api.calls_to("answerCallbackQuery"), what="the refusal")[0]
    assert refusal.params["callback_query_id"] == "stranger" and "moderators" in refusal.params["text"]
    time.sleep(1.0)
    assert server.api.calls_to("editMessageText") == []
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM reviews") == [(0,)]

    server.api.push_update(U.callback(confirm, U.MODERATOR, message, query_id="mod"))
    edit = wait_for(lambda: server.api.calls_to("editMessageText"), what="the edited alert")[0]
    assert "Confirmed" in edit.params["text"] and "Mia Mod" in edit.params["text"]
    assert edit.params["message_id"] == message["message_id"]
    assert db_rows(tmp_path, "SELECT reviewer_id, decision FROM reviews") == [(111, "confirm")]
    assert db_rows(tmp_path, "SELECT status FROM flags") == [("confirmed",)]


def test_429_and_500_delay_the_alert_without_losing_it(server, run_bot):
    server.api.fail("sendMessage", 429, retry_after=2)
    server.api.fail("sendMessage", 500)
    run_bot()
    server.api.push_update(U.channel_post(9, PROMO))
    wait_for(lambda: alerts_sent(server), timeout=30, what="the alert after the failures")
    attempts = [c for c in server.api.calls_to("sendMessage", ok_only=False) if c.params["chat_id"] == MODERATOR_CHAT_ID]
    assert [c.status for c in attempts] == [429, 500, 200]
    assert attempts[1].at - attempts[0].at >= 1.9  # retry_after was honoured
    time.sleep(1.0)
    assert len(alerts_sent(server)) == 1


def test_restart_sends_no_duplicate(server, run_bot, tmp_path):
    first = run_bot()
    server.api.push_update(U.channel_post(11, PROMO))
    wait_for(lambda: alerts_sent(server), what="the alert")
    first.stop()
    assert first.proc.returncode == 0, first.log()
    run_bot()
    # Telegram re-delivering the same post must not alert again either.
    server.api.push_update(U.channel_post(11, PROMO))
    wait_for(lambda: server.api.pending_updates() == 0, what="the redelivered update")
    time.sleep(2.0)
    assert len(alerts_sent(server)) == 1
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM flags") == [(1,)]


def test_digest_arrives(server, run_bot):
    run_bot(DIGEST_INTERVAL_MINUTES="0.05", ALERT_THRESHOLD="1.0")  # a digest every 3 s; the flag stays below threshold
    server.api.push_update(U.channel_post(12, PROMO))
    digest = wait_for(lambda: [c for c in server.api.calls_to("sendMessage") if "Digest" in c.params["text"]],
                      timeout=30, what="the digest")[0]
    assert "Flags: <b>1</b>" in digest.params["text"] and "Crypto Gems" in digest.params["text"]
    assert alerts_sent(server) == []  # below the threshold: digest only
    time.sleep(4)  # a further period with nothing new sends no further digest
    assert len([c for c in server.api.calls_to("sendMessage") if "Digest" in c.params["text"]]) == 1


@pytest.mark.parametrize("failure", ["401 from getMe", "no Bot API server"])
def test_a_rejected_token_or_unreachable_api_stops_start_up_in_one_line(server, tmp_path, model_path, failure):
    env = {}
    if failure == "401 from getMe":
        server.api.fail("getMe", 401, times=10)
    else:
        env["TELEGRAM_API_URL"] = "http://127.0.0.1:9/bot"  # the discard port: nothing listens there
    result = run_until_exit(server, tmp_path, model_path, **env)
    assert result.returncode != 0
    assert TEST_TOKEN not in result.stdout
    assert "Traceback" not in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("Error: ") and ("TELEGRAM_BOT_TOKEN" if "401" in failure else "TELEGRAM_API_URL") in last


def test_a_missing_moderator_chat_id_stops_start_up_in_one_line(server, tmp_path, model_path):
    result = run_until_exit(server, tmp_path, model_path, MODERATOR_CHAT_ID=None)
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        "Error: configuration error: MODERATOR_CHAT_ID is not set: required for run "
        "(the moderators' channel or group for alerts and digests, e.g. -1001234567890)"]
    assert server.api.calls == []  # stopped before it talked to Telegram
