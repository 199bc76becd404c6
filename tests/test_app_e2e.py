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

PROMO = (
    "Presale of $MOON ends Friday, 1 BNB = 50,000 MOON, buy now at moon-sale.example. "
    "Whitelist spots are limited, join the presale today!"
)
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
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MODERATOR_"))}
        | {
            "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
            "TELEGRAM_API_URL": server.base_url,
            "MODERATOR_CHAT_ID": str(MODERATOR_CHAT_ID),
            "MODERATOR_USER_IDS": "111,112",
            "DATABASE_PATH": str(workdir / "bot.db"),
            "MODEL_PATH": str(model_path),
            "OUTBOX_INTERVAL_SECONDS": "0.3",
            "DIGEST_INTERVAL_MINUTES": "600",
        }
        | env
    )
    return {k: v for k, v in env.items() if v is not None}


def run_until_exit(server: FakeBotApiServer, workdir: Path, model_path: Path, **env) -> subprocess.CompletedProcess:
    """`compliance-bot run` expected to stop at start-up; its output is stdout and stderr together."""
    return subprocess.run(
        command_line(),
        cwd=workdir,
        env=bot_env(server, workdir, model_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


class BotProcess:
    """One `compliance-bot run` against the fake server, with its stderr kept for inspection."""

    def __init__(self, server: FakeBotApiServer, workdir: Path, model_path: Path, **env):
        self.log_path = workdir / f"bot-{time.monotonic_ns()}.log"
        self.env = bot_env(server, workdir, model_path, **env)
        self.server = server
        self.proc = subprocess.Popen(
            command_line(), cwd=workdir, env=self.env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT
        )
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
    return [
        c
        for c in server.api.calls_to("sendMessage")
        if c.params["chat_id"] == MODERATOR_CHAT_ID and "alert #" in c.params["text"]
    ]


def db_rows(tmp_path, sql):
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        return conn.execute(sql).fetchall()


def test_promoting_post_alerts_once_and_news_does_not(server, run_bot, tmp_path):
    bot = run_bot()
    server.api.push_update(U.channel_post(41, NEWS))
    server.api.push_update(U.channel_post(42, PROMO))
    alert = wait_for(lambda: alerts_sent(server), what="the alert")[0]
    wait_for(
        lambda: server.api.pending_updates() == 0 and len(db_rows(tmp_path, "SELECT * FROM posts")) == 2,
        what="both posts stored",
    )
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
    attempts = [
        c for c in server.api.calls_to("sendMessage", ok_only=False) if c.params["chat_id"] == MODERATOR_CHAT_ID
    ]
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
    digest = wait_for(
        lambda: [c for c in server.api.calls_to("sendMessage") if "Digest" in c.params["text"]],
        timeout=30,
        what="the digest",
    )[0]
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
        "(the moderators' channel or group for alerts and digests, e.g. -1001234567890)"
    ]
    assert server.api.calls == []  # stopped before it talked to Telegram


# -- a clean stop: no error, the last offset confirmed, nothing delivered twice after a restart ------------------


def stop_with_sigterm(bot: BotProcess) -> float:
    """SIGTERM, as systemd or docker stop send it; returns when it was sent (the fake server's clock)."""
    sent = time.time()
    bot.proc.send_signal(signal.SIGTERM)
    bot.proc.wait(30)
    return sent


def assert_clean_stop(bot: BotProcess) -> None:
    log = bot.log()
    assert bot.proc.returncode == 0, log
    for word in ("Traceback", "ERROR", "CRITICAL"):
        assert word not in log, log


def final_poll(server, after: float):
    """The confirming getUpdates of the stop (timeout 0, no long poll), which reached the server after `after`."""
    polls = [p for p in server.api.polls if p.at >= after]
    finals = [p for p in polls if p.timeout == 0]
    assert len(finals) == 1, [(p.offset, p.timeout) for p in polls]
    return finals[0]


def stored_update_ids(tmp_path, update_of_message: dict[int, int]) -> set[int]:
    return {update_of_message[m] for (m,) in db_rows(tmp_path, "SELECT message_id FROM post_versions")}


def assert_nothing_below_delivered_again(server, first_poll: int, offset: int) -> None:
    """After a restart, Telegram hands out no update below the offset the stop confirmed."""
    again = [i for p in server.api.polls[first_poll:] for i in p.update_ids if i < offset]
    assert again == [], f"delivered again after the restart: {again[:20]}"


def test_a_clean_stop_confirms_what_was_processed_and_logs_no_error(server, run_bot, tmp_path):
    first = run_bot()
    update_of_message = {
        m: server.api.push_update(
            U.channel_post(m, PROMO.replace("$MOON", f"$M{m}") if m % 50 == 0 else f"{NEWS} #{m}")
        )
        for m in range(1000, 1600)
    }
    wait_for(lambda: server.api.confirmed_offset > 150, 30, "part of the burst confirmed")
    sigterm = stop_with_sigterm(first)  # most likely in the middle of the burst
    assert_clean_stop(first)
    offset = final_poll(server, sigterm).offset
    processed = stored_update_ids(tmp_path, update_of_message)
    # The stop confirmed exactly what was processed and stored: all of it, and nothing more.
    assert processed == set(range(1, offset)), (offset, sorted(processed)[-3:])

    restart = len(server.api.polls)
    run_bot()
    wait_for(
        lambda: len(db_rows(tmp_path, "SELECT 1 FROM post_versions")) == len(update_of_message),
        60,
        "the rest of the burst after the restart",
    )
    assert_nothing_below_delivered_again(server, restart, offset)
    versions = db_rows(tmp_path, "SELECT message_id, COUNT(*) FROM post_versions GROUP BY message_id")
    assert len(versions) == len(update_of_message) and {n for _, n in versions} == {1}


# Test hook, loaded by Python at start-up (sitecustomize). Once the file named by FAULT_PARK_POLL_FILE exists,
# the next getUpdates answer is held where httpx hands its connection back to the pool (httpcore's
# _response_closed) until a cancel lands there: what happens by chance when a stop's cancel meets a long poll
# that is just being answered. The connection is then never returned. "<file>.parked" says it is held.
PARK_POLL_HOOK = """
import asyncio, os

from httpcore._async.http11 import HTTP11ConnectionByteStream

_control = os.environ["FAULT_PARK_POLL_FILE"]
_aclose = HTTP11ConnectionByteStream.aclose
_parked = []


async def aclose(self):
    if not _parked and os.path.exists(_control) and self._request.url.target.endswith(b"/getUpdates"):
        _parked.append(self)
        self._closed = True
        open(_control + ".parked", "w").close()
        await asyncio.Event().wait()
    await _aclose(self)


HTTP11ConnectionByteStream.aclose = aclose
"""


def test_a_stop_that_cuts_off_an_answered_long_poll_still_confirms_and_logs_no_error(server, run_bot, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(PARK_POLL_HOOK)
    control = tmp_path / "park-poll"
    first = run_bot(
        PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]), FAULT_PARK_POLL_FILE=str(control)
    )
    for m in range(1, 6):
        server.api.push_update(U.channel_post(m, f"{NEWS} #{m}"))
    wait_for(
        lambda: len(db_rows(tmp_path, "SELECT 1 FROM posts")) == 5 and server.api.confirmed_offset == 6,
        20,
        "five posts stored and confirmed",
    )
    control.touch()
    last = server.api.push_update(U.channel_post(6, PROMO))  # answers the long poll, which is then held
    wait_for(lambda: Path(f"{control}.parked").exists(), 20, "the long poll's answer held")
    sigterm = stop_with_sigterm(first)
    assert_clean_stop(first)
    # The held answer's update was never handled: the stop confirms up to it, not past it.
    assert final_poll(server, sigterm).offset == last == 6
    assert db_rows(tmp_path, "SELECT message_id FROM posts ORDER BY message_id") == [(m,) for m in range(1, 6)]

    restart = len(server.api.polls)
    run_bot()
    wait_for(
        lambda: db_rows(tmp_path, "SELECT 1 FROM posts WHERE message_id = 6"), 30, "the held update delivered again"
    )
    assert_nothing_below_delivered_again(server, restart, 6)
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM post_versions") == [(6,)]
    wait_for(lambda: alerts_sent(server), what="the alert for the promotion")
