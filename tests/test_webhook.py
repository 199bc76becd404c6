"""The webhook's update intake (bot/webhook.py) in process, over HTTP on 127.0.0.1: the secret is checked as PTB
checks it, a body that is not an update is answered 400 with one log line that never quotes it, an update goes to
the queue; and, as properties, no JSON value or byte string posted makes it raise, answer anything but 200 or 400,
or log the body. The real `compliance-bot run --webhook` process is tested in tests/test_webhook_e2e.py."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import threading
import time
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from telegram import Update
from telegram.ext import ExtBot
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.webhook import (
    MAX_BODY_BYTES,
    MAX_UPDATE_ID,
    NotAnUpdate,
    intake_application,
    parse_update_body,
    use_webhook_intake,
)
from tests.conftest import TEST_TOKEN
from tests.fakes import updates as U

SECRET = "intake-secret_7"
# Every string the properties post carries this; it must never reach a log line.
CANARY = "QZXcanary"


class CapturedLogs(logging.Handler):
    """Every record of every logger at INFO and above (DEBUG for bot.webhook), formatted with its traceback."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record):
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        taken, self.records = self.records, []
        return taken

    def text(self, records) -> str:
        return "\n".join(self.format(r) for r in records)


class IntakeServer:
    """The intake's tornado application on 127.0.0.1, run by an event loop in a thread; requests are synchronous."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.queue: asyncio.Queue | None = None
        self.port = self._call(self._start())

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _start(self) -> int:
        self.queue = asyncio.Queue()
        self.server = HTTPServer(
            intake_application(ExtBot(TEST_TOKEN), self.queue, SECRET), max_body_size=MAX_BODY_BYTES
        )
        sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.server.add_sockets(sockets)
        return sockets[0].getsockname()[1]

    def post(
        self, body: bytes, secret: str | None = SECRET, content_type: str | None = "application/json", path: str = "/"
    ) -> int:
        headers = {} if content_type is None else {"Content-Type": content_type}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", path, body=body, headers=headers)
            return connection.getresponse().status
        finally:
            connection.close()

    def drain(self) -> list:
        async def drain():
            items = []
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            return items

        return self._call(drain())

    def close(self):
        async def stop():
            self.server.stop()
            await self.server.close_all_connections()

        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def logs():
    handler = CapturedLogs()
    # Tornado reports an oversized body on "tornado.general"; importing dask.distributed (the bulk-scan tests)
    # sets the "tornado" logger to CRITICAL and stops it propagating, for the whole process: both are set here
    # as the bot has them (its `run` never imports Dask).
    root, intake, tornado = logging.getLogger(), logging.getLogger("bot.webhook"), logging.getLogger("tornado")
    levels, propagate = (root.level, intake.level, tornado.level), tornado.propagate
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    intake.setLevel(logging.DEBUG)
    tornado.setLevel(logging.NOTSET)
    tornado.propagate = True
    yield handler
    root.removeHandler(handler)
    root.setLevel(levels[0])
    intake.setLevel(levels[1])
    tornado.setLevel(levels[2])
    tornado.propagate = propagate


@pytest.fixture(scope="module")
def intake(logs):
    server = IntakeServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def clean(request):
    """Each test starts with an empty queue and no records left by the one before."""
    if "intake" in request.fixturenames:
        request.getfixturevalue("intake").drain()
        request.getfixturevalue("logs").take()


def refusals(records) -> list[logging.LogRecord]:
    return [r for r in records if r.getMessage().startswith("refused a webhook request body")]


# -- examples -----------------------------------------------------------------------------------------------------

NOT_UPDATES = {
    "array": (b'[1, 2, "CANARY-array"]', "a JSON array, not an update object"),
    "null": (b"null", "JSON null, not an update object"),
    "string": (b'"CANARY-string"', "a JSON string, not an update object"),
    "number": (b"12345", "a JSON number, not an update object"),
    "object without update_id": (b'{"foo": "CANARY-foo"}', "a JSON object without an update_id"),
    "update_id as text": (b'{"update_id": "CANARY-1"}', "update_id is not a whole number"),
    "update_id true": (b'{"update_id": true, "message": "CANARY"}', "update_id is not a whole number"),
    "update_id float": (b'{"update_id": 1.5}', "update_id is not a whole number"),
    "negative update_id": (b'{"update_id": -1}', "update_id is not a whole number"),
    "update_id beyond 2^53": (json.dumps({"update_id": MAX_UPDATE_ID + 1}).encode(), "update_id is not a whole number"),
    "malformed": (b'{"update_id": 1, "message": "CANARY', "the body is not JSON"),
    "NaN": (b'{"update_id": NaN}', "the body is not JSON"),
    "integer of 5000 digits": (b'{"update_id": ' + b"7" * 5000 + b"}", "the body is not JSON"),
    "empty": (b"", "the body is empty"),
    "invalid UTF-8": (b'{"text": "CANARY-\xff\xfe"}', "the body is not UTF-8 text"),
    "surrogate bytes": (b'{"update_id": 5, "text": "CANARY-\xed\xa0\x80"}', "the body is not UTF-8 text"),
    "UTF-8 byte-order mark": (b'\xef\xbb\xbf{"update_id": 5}', "the body is not JSON"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "the body is JSON nested too deeply"),
}


@pytest.mark.parametrize("body, reason", NOT_UPDATES.values(), ids=NOT_UPDATES.keys())
def test_a_body_that_is_not_an_update_is_refused_400_in_one_line_without_its_content(intake, logs, body, reason):
    assert intake.post(body) == 400
    records = logs.take()
    assert len(records) == 1, logs.text(records)
    line = logs.text(records)
    assert records[0].levelname == "WARNING" and records[0].exc_info is None
    assert reason in line and f"{len(body)} bytes" in line
    assert "CANARY" not in line and SECRET not in line and TEST_TOKEN not in line
    assert intake.drain() == []
    with pytest.raises(NotAnUpdate, match=reason.replace("^", r"\^")):
        parse_update_body(body)


def test_an_update_is_answered_200_and_queued_without_a_log_line(intake, logs):
    update = U.channel_post(6, "Presale CANARY") | {"update_id": 901}
    assert intake.post(json.dumps(update).encode()) == 200
    assert intake.post(json.dumps({"update_id": 902}).encode(), content_type="application/json; charset=utf-8") == 200
    assert intake.post(json.dumps({"update_id": 903}).encode(), path="") == 200  # "/" and "" are the same path
    queued = intake.drain()
    assert [u.update_id for u in queued] == [901, 902, 903]
    assert queued[0].channel_post.text == "Presale CANARY"
    assert logs.take() == []


def test_an_update_python_telegram_bot_cannot_read_is_logged_by_id_and_kind_and_skipped(intake, logs):
    # Answering an error would make Telegram deliver it again and again; polling skips it the same way.
    assert intake.post(b'{"update_id": 77, "message": "CANARY-text", "CANARY-key": 1}') == 200
    records = logs.take()
    assert intake.drain() == []
    assert len(records) == 1 and records[0].levelname == "ERROR" and records[0].exc_info is None
    line = logs.text(records)
    assert "update 77 could not be read" in line and "its kinds: message, 1 other field" in line
    assert "CANARY" not in line


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1], "ключ"])
def test_a_missing_or_wrong_secret_is_refused_403_whatever_the_body_and_never_logged(intake, logs, secret):
    for body in (json.dumps({"update_id": 1}).encode(), b"[1, 2, 3]", b"{", b""):
        headers_secret = secret.encode().decode("latin-1") if secret else secret  # as the bytes travel
        assert intake.post(body, secret=headers_secret) == 403
    assert intake.drain() == []
    records = logs.take()
    assert all(r.levelno < logging.WARNING for r in records)
    assert SECRET not in logs.text(records) and (not secret or secret not in logs.text(records))


def test_a_body_that_is_not_json_by_its_content_type_is_refused_415(intake, logs):
    assert intake.post(b'{"update_id": 1}', content_type="text/plain") == 415
    assert intake.post(b'{"update_id": 1}', content_type=None) == 415
    assert intake.drain() == []
    records = logs.take()
    assert len(records) == 2 and all("Content-Type" in r.getMessage() for r in records)


def test_a_body_over_the_limit_is_refused_before_it_is_read(intake, logs):
    # Tornado answers from the Content-Length alone and closes the connection; the body is never sent here.
    with socket.create_connection(("127.0.0.1", intake.port), timeout=10) as s:
        s.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        assert s.recv(100).startswith(b"HTTP/1.1 400 ")
    assert intake.drain() == []
    # Tornado logs after it has answered, on the server's thread: on a loaded machine the answer can arrive first.
    records, deadline = logs.take(), time.monotonic() + 10
    while not records and time.monotonic() < deadline:
        time.sleep(0.05)
        records = logs.take()
    assert len(records) == 1 and "Content-Length too long" in records[0].getMessage()


def test_other_methods_are_not_allowed(intake):
    connection = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=10)
    connection.request("GET", "/")
    assert connection.getresponse().status == 405
    connection.close()


# -- properties ---------------------------------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEXT = st.text(max_size=12).map(lambda s: CANARY + s)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
UPDATE_ID = st.integers(-3, 3) | st.integers(MAX_UPDATE_ID - 2, MAX_UPDATE_ID + 2) | st.integers(0, 2**31) | JSON
# Objects shaped like updates, whose fields PTB may or may not read: a message with fields of any type.
MESSAGE = st.fixed_dictionaries(
    {
        "message_id": st.integers(-2, 2**40) | JSON,
        "date": st.integers(-(2**40), 2**40) | JSON,
        "chat": st.fixed_dictionaries(
            {"id": st.integers() | JSON, "type": st.sampled_from(["channel", "group", "supergroup", "private"]) | TEXT}
        ),
    },
    optional={"text": TEXT | JSON, "caption": JSON, "entities": JSON, "from": JSON, "reply_markup": JSON},
)
KIND = st.sampled_from(
    [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
        "my_chat_member",
        "poll",
        "inline_query",
    ]
)
UPDATE_LIKE = st.builds(
    lambda update_id, kind, content, extra: {"update_id": update_id, kind: content} | extra,
    UPDATE_ID,
    KIND,
    MESSAGE | JSON,
    st.dictionaries(TEXT, JSON, max_size=2),
)


def is_update(value) -> bool:
    """The property's own statement of the rule: an object whose update_id is a whole number in Telegram's range."""
    return isinstance(value, dict) and type(value.get("update_id")) is int and 0 <= value["update_id"] <= MAX_UPDATE_ID


def assert_logged_without_body(logs, records) -> None:
    text = logs.text(records)
    assert CANARY not in text and SECRET not in text and TEST_TOKEN not in text, text
    assert all(r.exc_info is None and r.levelno < logging.CRITICAL for r in records), text


@PROPERTY
@given(JSON | UPDATE_LIKE)
def test_any_json_value_is_answered_200_if_an_update_else_400_and_its_content_never_logged(intake, logs, value):
    status = intake.post(json.dumps(value).encode())
    records, queued = logs.take(), intake.drain()
    assert_logged_without_body(logs, records)
    event("refused" if not is_update(value) else "queued" if queued else "skipped, not read by PTB")
    if not is_update(value):
        assert status == 400 and queued == [] and len(refusals(records)) == len(records) == 1, logs.text(records)
        return
    assert status == 200
    if queued:  # read: queued as it is, nothing logged
        assert len(queued) == 1 and isinstance(queued[0], Update) and queued[0].update_id == value["update_id"]
        assert records == []
    else:  # not read by PTB: one line with its id, skipped
        assert len(records) == 1 and f"update {value['update_id']} could not be read" in records[0].getMessage()


@PROPERTY
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_any_bytes_are_answered_200_or_400_and_never_logged(intake, logs, before, after):
    body = before + CANARY.encode() + after
    status = intake.post(body)
    records, queued = logs.take(), intake.drain()
    assert_logged_without_body(logs, records)
    assert status in (200, 400)
    event(f"answered {status}")
    if status == 400:
        assert len(refusals(records)) == len(records) == 1 and queued == []
    else:
        assert is_update(json.loads(body.decode("utf-8"))) and len(queued) + len(records) == 1


@settings(
    max_examples=60,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(JSON | UPDATE_LIKE, st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20))
def test_without_the_secret_nothing_is_read_whatever_the_body(intake, logs, value, secret):
    if secret == SECRET:
        secret = None
    assert intake.post(json.dumps(value).encode(), secret=secret) == 403
    assert intake.drain() == []
    assert all(r.levelno < logging.WARNING for r in logs.take())


# -- the updater that Application.run_webhook starts and stops ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_webhook_updater_sets_the_webhook_serves_the_intake_and_stops(harness):
    from bot.app import ALLOWED_UPDATES

    app, port = harness.app, free_port()
    use_webhook_intake(app)
    await app.updater.start_webhook(
        listen="127.0.0.1",
        port=port,
        webhook_url="https://bot.example/hook",
        allowed_updates=ALLOWED_UPDATES,
        secret_token=SECRET,
    )
    try:
        assert app.updater.running
        params = harness.api.calls_to("setWebhook")[0].params
        assert params["url"] == "https://bot.example/hook" and params["secret_token"] == SECRET
        await app.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            assert (
                await client.post("/", content=b"[1,2,3]", headers=headers | {"Content-Type": "application/json"})
            ).status_code == 400
            good = U.private_message(3, "/start") | {"update_id": 5}
            assert (await client.post("/", json=good, headers=headers)).status_code == 200
            for _ in range(100):
                if harness.api.calls_to("sendMessage"):
                    break
                await asyncio.sleep(0.02)
        assert harness.api.calls_to("sendMessage"), "the update was not handled"
    finally:
        await app.updater.stop()
        if app.running:
            await app.stop()
    assert not app.updater.running
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))


async def test_a_taken_port_fails_before_telegram_is_told_anything(harness):
    app = harness.app
    use_webhook_intake(app)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await app.updater.start_webhook(
                listen="127.0.0.1",
                port=taken.getsockname()[1],
                webhook_url="https://bot.example/hook",
                secret_token=SECRET,
            )
    assert harness.api.calls_to("setWebhook") == [] and not app.updater.running


async def test_a_refused_set_webhook_stops_the_server_again(harness):
    from telegram.error import TelegramError

    app, port = harness.app, free_port()
    harness.api.fail("setWebhook", 400)
    use_webhook_intake(app)
    with pytest.raises(TelegramError):
        await app.updater.start_webhook(
            listen="127.0.0.1", port=port, webhook_url="https://bot.example/hook", secret_token=SECRET
        )
    assert not app.updater.running
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
