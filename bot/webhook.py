"""Webhook mode: the HTTP server that takes updates from Telegram, with the body checked before it becomes an Update.

PTB's ``Updater.start_webhook`` serves a fixed tornado handler (``telegram.ext._utils.webhookhandler.TelegramHandler``)
whose ``post`` decodes and parses the body with no check (invalid UTF-8, malformed JSON or an empty body escape as
exceptions: HTTP 500), and then logs any body ``Update.de_json`` cannot read ([1, 2, 3], null, {"foo": 1}) as
CRITICAL, with a traceback and the whole body. A body such as {"update_id": "x"} is even accepted and queued. PTB has
no hook to put another handler there, so ``WebhookUpdater`` takes the place of the application's updater
(``Application.run_webhook`` uses only an updater's public methods: initialize, start_webhook, running, stop, shutdown)
and serves ``UpdateIntake`` with tornado, the library PTB's own server uses.

``UpdateIntake`` keeps PTB's secret-token check (a missing or wrong ``X-Telegram-Bot-Api-Secret-Token``: 403, compared
in constant time, the header never logged), then answers

* 400 to a body that is not an update (``parse_update_body``: empty, not UTF-8, not JSON, not an object, no
  ``update_id`` that is a whole number from 0 to 2^53 - 1), with one warning line that says why and never quotes it;
* 200 to an update, which goes to ``application.update_queue``. An update with a valid ``update_id`` that PTB cannot
  read (a field of a type it does not expect) is logged in one line with its id and update kind, and skipped, as
  polling does (``bot/polling.py``): answering an error would make Telegram deliver it again and again.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from http import HTTPStatus

import tornado.web
from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import ExtBot, Updater
from tornado.httpserver import HTTPServer

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's updates are a few kilobytes; tornado answers a longer body 400 before reading it.
MAX_BODY_BYTES = 1 << 20
# Update ids are positive and sequential; Telegram's integer ids fit in 53 bits (exact in a JSON double).
MAX_UPDATE_ID = 2**53 - 1
KNOWN_FIELDS = frozenset(Update.ALL_TYPES)


class NotAnUpdate(ValueError):
    """A request body that is not a Telegram update; the message says why without quoting the body."""


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_kind(value: object) -> str:
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, (int, float)):
        return "a JSON number"
    if isinstance(value, str):
        return "a JSON string"
    return "a JSON array"


def parse_update_body(body: bytes) -> dict:
    """The JSON object of an update posted to the webhook, or NotAnUpdate saying why the body is not one."""
    if not body:
        raise NotAnUpdate("the body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotAnUpdate("the body is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)  # NaN and Infinity are not JSON
    except RecursionError:
        raise NotAnUpdate("the body is JSON nested too deeply") from None
    except ValueError:  # malformed JSON, or an integer longer than Python converts
        raise NotAnUpdate("the body is not JSON") from None
    if not isinstance(data, dict):
        raise NotAnUpdate(f"the body is {_json_kind(data)}, not an update object")
    if "update_id" not in data:
        raise NotAnUpdate("the body is a JSON object without an update_id")
    update_id = data["update_id"]
    if type(update_id) is not int or not 0 <= update_id <= MAX_UPDATE_ID:
        raise NotAnUpdate("its update_id is not a whole number from 0 to 2^53 - 1")
    return data


def _kinds(data: dict) -> str:
    """The update kinds a body names (PTB's own names only: other keys are counted, never quoted)."""
    known = sorted(str(k) for k in data if k in KNOWN_FIELDS)
    others = sum(1 for k in data if k not in KNOWN_FIELDS and k != "update_id")
    return ", ".join(known + ([f"{others} other field{'s' if others > 1 else ''}"] if others else [])) or "none"


class UpdateIntake(tornado.web.RequestHandler):
    """Takes one POST from Telegram: the secret is checked, the body validated, then it becomes an Update."""

    SUPPORTED_METHODS = ("POST",)  # type: ignore[assignment]

    def initialize(self, bot, update_queue: asyncio.Queue, secret_token: str | None) -> None:
        self.bot = bot
        self.update_queue = update_queue
        self.secret_token = secret_token

    async def post(self) -> None:
        if not self._authentic():
            log.debug("a webhook request without the right secret token was refused")
            return self._answer(HTTPStatus.FORBIDDEN)
        media_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            log.warning("refused a webhook request whose Content-Type is not application/json (answered 415)")
            return self._answer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        body = self.request.body
        try:
            data = parse_update_body(body)
        except NotAnUpdate as exc:
            log.warning("refused a webhook request body of %d bytes: %s (answered 400)", len(body), exc)
            return self._answer(HTTPStatus.BAD_REQUEST)
        try:
            update = Update.de_json(data, self.bot)
        except Exception as exc:  # a field of a type PTB does not expect: the same as an unreadable polled update
            log.error(
                "update %d could not be read (%s), skipped; its kinds: %s",
                data["update_id"],
                type(exc).__name__,
                _kinds(data),
            )
            return self._answer(HTTPStatus.OK)
        if isinstance(self.bot, ExtBot):
            self.bot.insert_callback_data(update)
        await self.update_queue.put(update)
        self._answer(HTTPStatus.OK)

    def _authentic(self) -> bool:
        """PTB's rule: with a secret set, the header must be present and equal to it."""
        if self.secret_token is None:
            return True
        given = self.request.headers.get(SECRET_HEADER)
        if not given:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.secret_token.encode("utf-8"))

    def _answer(self, status: HTTPStatus) -> None:
        self.set_status(status)
        self.finish()


def intake_application(
    bot, update_queue: asyncio.Queue, secret_token: str | None, url_path: str = ""
) -> tornado.web.Application:
    """The tornado application that serves the webhook path; no access log (a line per update is noise)."""
    pattern = re.escape(("/" + url_path.strip("/")).rstrip("/")) + "/?"
    return tornado.web.Application(
        [(pattern, UpdateIntake, {"bot": bot, "update_queue": update_queue, "secret_token": secret_token})],
        log_function=lambda handler: None,
    )


class WebhookUpdater(Updater):
    """The application's updater in webhook mode: sets the webhook and serves ``UpdateIntake`` until stopped.

    Polling is not offered: ``bot/polling.py`` adapts PTB's own updater for it.
    """

    def __init__(self, bot, update_queue: asyncio.Queue):
        super().__init__(bot, update_queue)
        self._server: HTTPServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start_polling(self, *args, **kwargs):
        raise RuntimeError("WebhookUpdater serves a webhook only; polling uses the application's own updater")

    async def start_webhook(
        self,
        listen="127.0.0.1",
        port=80,
        url_path: str = "",
        cert=None,
        key=None,
        bootstrap_retries: int = 0,
        webhook_url: str | None = None,
        allowed_updates=None,
        drop_pending_updates: bool | None = None,
        ip_address: str | None = None,
        max_connections: int = 40,
        secret_token: str | None = None,
        unix=None,
    ) -> asyncio.Queue:
        """Listen first (a taken port fails before Telegram is told anything), then setWebhook."""
        if cert is not None or key is not None or unix is not None:
            raise ValueError("certificates and unix sockets are not served here: put a reverse proxy in front")
        if not webhook_url:
            raise ValueError("webhook_url is required")
        if self.running:
            raise RuntimeError("This Updater is already running!")
        listen, port = getattr(listen, "value", listen), getattr(port, "value", port)  # PTB's DefaultValue
        server = HTTPServer(
            intake_application(self.bot, self.update_queue, secret_token, url_path), max_body_size=MAX_BODY_BYTES
        )
        server.listen(port, address=listen)
        try:
            await self._set_webhook(
                bootstrap_retries,
                url=webhook_url,
                allowed_updates=allowed_updates,
                ip_address=ip_address,
                max_connections=max_connections,
                drop_pending_updates=drop_pending_updates,
                secret_token=secret_token,
            )
        except BaseException:
            server.stop()
            await server.close_all_connections()
            raise
        self._server = server
        log.info("webhook listening on %s:%s", listen, port)
        return self.update_queue

    async def _set_webhook(self, retries: int, **params) -> None:
        """setWebhook, tried again up to `retries` times (negative: until it works), as PTB's bootstrap does."""
        attempt = 0
        while True:
            try:
                await self.bot.set_webhook(**params)
                return
            except InvalidToken:
                raise
            except TelegramError as exc:
                if 0 <= retries <= attempt:
                    raise
                attempt += 1
                log.warning("setWebhook failed (%s), trying again in 1 s", type(exc).__name__)
            await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._server is None:
            raise RuntimeError("This Updater is not running!")
        server, self._server = self._server, None
        server.stop()
        await server.close_all_connections()  # requests being answered finish first


def use_webhook_intake(application) -> None:
    """Make ``application.run_webhook`` serve ``UpdateIntake`` instead of PTB's own webhook handler."""
    application.updater = WebhookUpdater(application.bot, application.update_queue)
