"""End to end in webhook mode: the real `compliance-bot run --webhook` process receives updates over HTTP
on 127.0.0.1, checks Telegram's secret-token header, answers 400 to a body that is not an update (one log line,
never the body) and keeps going, and alerts through the fake Bot API."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import MODERATOR_CHAT_ID, TEST_TOKEN
from tests.fakes import updates as U
from tests.test_app_e2e import PROMO, alerts_sent, bot_env, command_line, db_rows, wait_for

pytestmark = pytest.mark.slow
SECRET = "webhook-secret_42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_body(port: int, body: bytes, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def post_update(port: int, update: dict, secret: str | None) -> int:
    return post_body(port, json.dumps(update).encode(), secret)


def start_webhook_bot(server, tmp_path, model_path) -> tuple[subprocess.Popen, int, object]:
    """`compliance-bot run --webhook` on a free port of 127.0.0.1: the process, the port and its log file."""
    port = free_port()
    env = bot_env(
        server,
        tmp_path,
        model_path,
        WEBHOOK_URL="https://bot.example/hook",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
    )
    log_path = tmp_path / "webhook.log"
    proc = subprocess.Popen(
        command_line() + ["--webhook"], cwd=tmp_path, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT
    )
    return proc, port, log_path


def test_webhook_mode_takes_updates_with_the_secret_and_refuses_others(server, tmp_path, model_path):
    proc, port, log_path = start_webhook_bot(server, tmp_path, model_path)
    try:
        registered = wait_for(lambda: server.api.calls_to("setWebhook") or proc.poll() is not None, 60, "setWebhook")
        assert proc.poll() is None, log_path.read_text()
        params = registered[0].params
        assert params["url"] == "https://bot.example/hook" and params["secret_token"] == SECRET
        allowed = params["allowed_updates"]
        allowed = json.loads(allowed) if isinstance(allowed, str) else allowed  # form-encoded as JSON text
        assert {
            "message",
            "edited_message",
            "channel_post",
            "edited_channel_post",
            "callback_query",
            "my_chat_member",
        } <= set(allowed)

        forged = U.channel_post(5, PROMO) | {"update_id": 900}
        wait_for(lambda: post_update(port, forged, "wrong") == 403, 20, "the webhook server")
        assert post_update(port, forged, None) == 403
        time.sleep(1.0)
        assert db_rows(tmp_path, "SELECT COUNT(*) FROM posts") == [(0,)]  # refused updates are never scanned

        assert post_update(port, U.channel_post(6, PROMO) | {"update_id": 901}, SECRET) == 200
        alert = wait_for(lambda: alerts_sent(server), what="the alert")[0]
        assert alert.params["chat_id"] == MODERATOR_CHAT_ID
        assert db_rows(tmp_path, "SELECT message_id, label FROM posts") == [(6, "ico")]
    finally:
        proc.terminate()
        proc.wait(20)
    log = log_path.read_text(errors="replace")
    assert TEST_TOKEN not in log and SECRET not in log


# Bodies that are not updates, each with the status it gets; "CANARY" marks content that must never be logged.
NOT_UPDATES = [
    (b'[1, 2, "CANARY-array"]', 400),
    (b"null", 400),
    (b'{"foo": "CANARY-object"}', 400),
    (b'{"update_id": "CANARY-id"}', 400),
    (b'{"update_id": 950, "channel_post": "CANARY', 400),  # malformed JSON
    (b"", 400),
    (b'{"update_id": 951, "text": "CANARY-\xff\xfe"}', 400),  # not UTF-8
    (b'{"update_id": 952, "text": "CANARY-\xed\xa0\x80"}', 400),  # a surrogate's bytes: not UTF-8 either
    (b"[" * 50_000 + b"]" * 50_000, 400),
]


def test_webhook_answers_400_to_bodies_that_are_not_updates_logs_one_line_each_and_keeps_going(
    server, tmp_path, model_path
):
    proc, port, log_path = start_webhook_bot(server, tmp_path, model_path)
    try:
        wait_for(lambda: server.api.calls_to("setWebhook") or proc.poll() is not None, 60, "setWebhook")
        assert proc.poll() is None, log_path.read_text()
        wait_for(lambda: post_body(port, b"[]", "wrong") == 403, 20, "the webhook server")
        assert post_body(port, b'{"foo": "CANARY-forged"}', None) == 403  # the secret is checked first

        for body, status in NOT_UPDATES:
            assert post_body(port, body, SECRET) == status, body[:60]
            assert proc.poll() is None, log_path.read_text()
        # An update PTB cannot read (a field of the wrong type) is skipped like a polled one: 200, one line.
        assert post_body(port, b'{"update_id": 960, "channel_post": "CANARY-unreadable"}', SECRET) == 200

        assert post_update(port, U.channel_post(8, PROMO) | {"update_id": 961}, SECRET) == 200
        wait_for(lambda: alerts_sent(server), what="the alert for the update after the bad bodies")
        assert db_rows(tmp_path, "SELECT message_id, label FROM posts") == [(8, "ico")]
    finally:
        proc.terminate()
        returncode = proc.wait(20)
    log = log_path.read_text(errors="replace")
    assert returncode == 0, log
    refused = [line for line in log.splitlines() if "refused a webhook request body" in line]
    assert len(refused) == len(NOT_UPDATES), log
    assert len([line for line in log.splitlines() if "update 960 could not be read" in line]) == 1, log
    for word in ("CANARY", "Traceback", "CRITICAL", "Something went wrong", SECRET, TEST_TOKEN):
        assert word not in log, f"{word!r} in the log:\n{log}"
