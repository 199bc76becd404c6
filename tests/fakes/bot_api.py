"""A fake Telegram Bot API: one core that records calls and serves updates, behind two transports.

- :class:`InMemoryRequest` plugs the core under a PTB ``Application`` in the same process (handler tests);
- :class:`FakeBotApiServer` serves it over real HTTP on 127.0.0.1 with aiohttp, in a thread of its own,
  for the end-to-end tests that run the real ``compliance-bot run`` process.

Failures can be injected per method: ``api.fail("sendMessage", 429, retry_after=2)`` or ``api.fail("sendMessage", 500)``.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import time
from dataclasses import dataclass, field

from telegram.request import BaseRequest

BOT_USER = {
    "id": 999000,
    "is_bot": True,
    "first_name": "Compliance",
    "username": "compliance_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": True,
    "supports_inline_queries": False,
}


@dataclass
class Call:
    method: str
    params: dict
    files: dict = field(default_factory=dict)  # part name -> (filename, bytes)
    at: float = field(default_factory=time.time)
    status: int = 200


@dataclass
class Poll:
    """One getUpdates request over HTTP: its offset and timeout, when it came and was answered (None while it is
    held), the update ids of the answer (also when the client had gone away by then)."""

    offset: int | None
    timeout: float
    at: float = field(default_factory=time.time)
    answered: float | None = None
    update_ids: list[int] = field(default_factory=list)


class FakeBotApi:
    """The state of the fake Telegram: queued updates, recorded calls, messages the bot sent."""

    def __init__(self):
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.updates: list[dict] = []
        self._next_update_id = 1
        self._next_message_id = 5000
        self._failures: dict[str, list[tuple[int, int | None]]] = {}
        self.messages: dict[tuple[int, int], dict] = {}  # what the bot sent, as currently edited
        # The highest getUpdates offset received: every update below it is confirmed, Telegram forgot it.
        self.confirmed_offset = 0
        self.served_at: dict[int, float] = {}  # update_id -> when getUpdates first handed it out
        self._outage_until = 0.0
        self._outage_mode = "hang"
        self.polls: list[Poll] = []  # every getUpdates that reached the HTTP server, in arrival order
        # Acting on flags (issue 15): chat members as getChatMember answers, refusals by (method, chat id).
        self.members: dict[tuple[int, int], dict] = {}
        self.refusals: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self.files: dict[str, bytes] = {}  # file_id -> content, served by getFile and the file URL
        self.downloads: list[str] = []  # file paths downloaded, in order

    # -- test side ------------------------------------------------------------------------------
    def push_update(self, update: dict) -> int:
        with self._lock:
            update = {"update_id": self._next_update_id} | update
            self._next_update_id += 1
            self.updates.append(update)
            return update["update_id"]

    def fail(self, method: str, status: int, retry_after: int | None = None, times: int = 1) -> None:
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def calls_to(self, method: str, ok_only: bool = True) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    def outage(self, seconds: float, mode: str = "hang") -> None:
        """For `seconds`, every HTTP request hangs without an answer (``hang``) or has its connection
        closed (``close``): Telegram unreachable. Only the HTTP transport honours it."""
        assert mode in ("hang", "close")
        with self._lock:
            self._outage_until, self._outage_mode = time.monotonic() + seconds, mode

    def in_outage(self) -> tuple[float, str] | None:
        with self._lock:
            left = self._outage_until - time.monotonic()
            return (left, self._outage_mode) if left > 0 else None

    def confirmed_update_ids(self) -> list[int]:
        """Ids of the pushed updates that the bot has confirmed (below the highest offset it sent)."""
        with self._lock:
            return [i for i in self.served_at if i < self.confirmed_offset]

    def pending_updates(self) -> int:
        with self._lock:
            return len(self.updates)

    # -- files: getFile and the file URL (/file/bot<token>/<file_path>) ---------------------------------
    def add_file(self, file_id: str, content: bytes) -> None:
        with self._lock:
            self.files[file_id] = content

    def download(self, file_path: str) -> bytes | None:
        """A file's content by the file_path getFile gave; None (a 404) for a path it never gave."""
        with self._lock:
            self.downloads.append(file_path)
            file_id = file_path.removeprefix("files/")
            return self.files.get(file_id) if file_path.startswith("files/") else None

    def _file(self, params: dict) -> dict:
        file_id = str(params.get("file_id"))
        content = self.files.get(file_id)
        result = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_path": f"files/{file_id}"}
        return result | ({"file_size": len(content)} if content is not None else {})

    # -- API side -------------------------------------------------------------------------------
    def take_updates(self, offset: int | None, limit: int = 100) -> list[dict]:
        with self._lock:
            if offset:
                # Telegram forgets updates below the offset: they were confirmed.
                if offset > self.confirmed_offset:
                    self.confirmed_offset = offset
                    if self.updates and self.updates[0]["update_id"] < offset:
                        self.updates = [u for u in self.updates if u["update_id"] >= offset]
            served = list(self.updates[:limit])
            now = time.time()
            for update in served:
                self.served_at.setdefault(update["update_id"], now)
            return served

    def handle(self, method: str, params: dict, files: dict | None = None) -> tuple[int, dict]:
        with self._lock:
            failures = self._failures.get(method)
            if failures:
                status, retry_after = failures.pop(0)
                self.calls.append(Call(method, params, files or {}, status=status))
                body = {"ok": False, "error_code": status, "description": f"Injected failure {status}"}
                if retry_after is not None:
                    body["parameters"] = {"retry_after": retry_after}
                    body["description"] = f"Too Many Requests: retry after {retry_after}"
                return status, body
            refused = self._refusal(method, params)
            if refused is not None:
                status, description = refused
                self.calls.append(Call(method, params, files or {}, status=status))
                return status, {"ok": False, "error_code": status, "description": description}
            refusal = _over_limits(method, params)
            if refusal is not None:
                self.calls.append(Call(method, params, files or {}, status=400))
                return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {refusal}"}
            if method != "getUpdates":
                self.calls.append(Call(method, params, files or {}))
            return 200, {"ok": True, "result": self._result(method, params, files or {})}

    def _result(self, method: str, params: dict, files: dict):
        if method == "getMe":
            return BOT_USER
        if method in ("sendMessage", "sendDocument"):
            chat_id = int(params["chat_id"])
            self._next_message_id += 1
            message = {
                "message_id": self._next_message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "supergroup" if chat_id < 0 else "private", "title": "Moderators"},
                "from": BOT_USER,
            }
            if method == "sendMessage":
                message["text"] = params.get("text", "")
                if params.get("reply_markup"):
                    message["reply_markup"] = _as_json(params["reply_markup"])
            else:
                name = next(iter(files.values()), ("file", b""))[0]
                message["document"] = {"file_id": "doc1", "file_unique_id": "doc1u", "file_name": name}
            self.messages[(chat_id, message["message_id"])] = message
            return message
        if method == "editMessageText":
            key = (int(params["chat_id"]), int(params["message_id"]))
            message = self.messages.get(
                key, {"message_id": key[1], "date": int(time.time()), "chat": {"id": key[0], "type": "supergroup"}}
            )
            message = message | {"text": params.get("text", ""), "edit_date": int(time.time())}
            if params.get("reply_markup"):
                message["reply_markup"] = _as_json(params["reply_markup"])
            self.messages[key] = message
            return message
        if method == "getMyCommands":
            return []
        if method == "getChatMember":
            return self.member(int(params["chat_id"]), int(params["user_id"]))
        if method == "editMessageReplyMarkup":
            key = (int(params["chat_id"]), int(params["message_id"]))
            message = self.messages.get(key, {"message_id": key[1], "date": int(time.time()), "chat": {"id": key[0]}})
            self.messages[key] = message | {"reply_markup": _as_json(params.get("reply_markup")) or {}}
            return self.messages[key]
        if method == "getFile":
            return self._file(params)
        # setMyCommands, deleteWebhook, answerCallbackQuery, setWebhook, close, logOut …
        return True

    # -- acting on flags: getChatMember, deleteMessage, banChatMember, banChatSenderChat ----------------------
    def set_member(self, chat_id: int, user_id: int = BOT_USER["id"], status: str = "administrator", **rights) -> None:
        """What getChatMember answers for a user (by default the bot) in a chat. An administrator gets every
        right unless told otherwise: ``set_member(chat, can_restrict_members=False)``."""
        member = {
            "user": BOT_USER if user_id == BOT_USER["id"] else {"id": user_id, "is_bot": False, "first_name": "U"}
        }
        member["status"] = status
        if status == "administrator":
            member |= {right: True for right in _ADMIN_RIGHTS} | {"can_be_edited": False, "is_anonymous": False}
        if status == "kicked":
            member["until_date"] = 0
        with self._lock:
            self.members[(chat_id, user_id)] = member | rights

    def member(self, chat_id: int, user_id: int) -> dict:
        """A member set with set_member; anyone else is a plain member (the bot: no rights to act)."""
        user = BOT_USER if user_id == BOT_USER["id"] else {"id": user_id, "is_bot": False, "first_name": "U"}
        return self.members.get((chat_id, user_id), {"user": user, "status": "member"})

    def refuse(self, method: str, chat_id: int, description: str, status: int = 400, times: int = 1) -> None:
        """Answer the next calls of ``method`` in ``chat_id`` with an error, as Telegram words it:
        ``refuse("deleteMessage", chat, "Bad Request: message can't be deleted")``."""
        with self._lock:
            self.refusals.setdefault((method, chat_id), []).extend([(status, description)] * times)

    def _refusal(self, method: str, params: dict) -> tuple[int, str] | None:
        try:
            chat_id = int(params.get("chat_id"))
        except (TypeError, ValueError):
            return None
        queued = self.refusals.get((method, chat_id))
        return queued.pop(0) if queued else None


_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


def _as_json(value):
    return json.loads(value) if isinstance(value, str) else value


MAX_MESSAGE = 4096  # UTF-16 code units of the text after entity parsing
MAX_CALLBACK_DATA = 64  # bytes


def _over_limits(method: str, params: dict) -> str | None:
    """Telegram's description of the 400 the real API gives for a text or button data over its limits."""
    if method in ("sendMessage", "editMessageText"):
        text = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML":
            text = html.unescape(re.sub(r"<[^>]*>", "", text))
        if len(text.encode("utf-16-le")) // 2 > MAX_MESSAGE:
            return "message is too long"
    markup = _as_json(params.get("reply_markup")) or {}
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if len(str(button.get("callback_data", "")).encode("utf-8")) > MAX_CALLBACK_DATA:
                return "BUTTON_DATA_INVALID"
    return None


class InMemoryRequest(BaseRequest):
    """A PTB transport that hands every request straight to a :class:`FakeBotApi`."""

    def __init__(self, api: FakeBotApi):
        self.api = api

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url,
        method,
        request_data=None,
        read_timeout=None,
        write_timeout=None,
        connect_timeout=None,
        pool_timeout=None,
    ) -> tuple[int, bytes]:
        if "/file/bot" in url:  # a download from the file URL getFile gave
            content = self.api.download(url.split("/file/bot", 1)[1].split("/", 1)[1])
            return (200, content) if content is not None else (404, b"Not Found")
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        files = {}
        if request_data and request_data.contains_files:
            for part, value in request_data.multipart_data.items():
                filename, content = value[0], value[1]
                files[part] = (filename, content if isinstance(content, bytes) else content.read())
        if name == "getUpdates":
            return 200, json.dumps({"ok": True, "result": self.api.take_updates(params.get("offset"))}).encode()
        status, body = self.api.handle(name, params, files)
        return status, json.dumps(body).encode()


# Form fields arrive as strings; these carry numbers or JSON in the Bot API.
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id", "sender_chat_id"}


class FakeBotApiServer:
    """The fake API over HTTP: ``http://127.0.0.1:<port>/bot<token>/<method>``, run in a background thread."""

    def __init__(self, api: FakeBotApi | None = None):
        self.api = api or FakeBotApi()
        self.port: int | None = None
        self.tokens_seen: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> FakeBotApiServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Bot API server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _handle(self, request):
        from aiohttp import web

        self.tokens_seen.add(request.match_info["token"])
        method = request.match_info["method"]
        outage = self.api.in_outage()
        if outage is not None:
            left, mode = outage
            if mode == "close":
                request.transport.close()  # the client sees the connection dropped, no answer
                raise ConnectionResetError("fake outage")
            await asyncio.sleep(left)  # hang: answer nothing until the outage is over (the client times out first)
            request.transport.close()
            raise ConnectionResetError("fake outage")
        params, files = await self._params(request)
        if method == "getUpdates":
            poll = Poll(params.get("offset"), float(params.get("timeout") or 0))
            with self.api._lock:
                self.api.polls.append(poll)
            # Long polling: hold the request until an update is queued or the client's timeout passes.
            deadline = time.monotonic() + min(poll.timeout, 5.0)
            while True:
                updates = self.api.take_updates(poll.offset, int(params.get("limit") or 100))
                if updates or time.monotonic() >= deadline:
                    poll.update_ids, poll.answered = [u["update_id"] for u in updates], time.time()
                    return web.json_response({"ok": True, "result": updates})
                await asyncio.sleep(0.05)
        status, body = self.api.handle(method, params, files)
        return web.json_response(body, status=status)

    async def _download(self, request):
        """A file from the file URL getFile gave (https://api.telegram.org/file/bot<token>/<file_path>)."""
        from aiohttp import web

        self.tokens_seen.add(request.match_info["token"])
        content = self.api.download(request.match_info["path"])
        if content is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=content, content_type="application/octet-stream")

    @staticmethod
    async def _params(request) -> tuple[dict, dict]:
        if request.content_type == "application/json":
            return await request.json(), {}
        params, files = {}, {}
        form = await request.post()
        for key, value in form.items():
            if hasattr(value, "file"):
                files[key] = (value.filename, value.file.read())
            elif key in _INT_FIELDS:
                params[key] = int(value)
            elif isinstance(value, str) and value[:1] in "[{":
                params[key] = json.loads(value)
            else:
                params[key] = value
        return params, files
