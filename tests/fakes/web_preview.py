"""A fake t.me web preview: public channel pages in the structure Telegram serves, over real HTTP on 127.0.0.1.

``/s/NAME`` answers the newest 20 posts of a public channel, ``/s/NAME?before=ID`` the 20 before ID (with the
"more" link to older ones while there are any); a private channel, a group or an unknown name is redirected to
``/NAME``, which shows a profile page or the "contact @NAME" page of a name nobody holds. Failures are injected
per channel (``fail("name", 429, retry_after=1)``), and every request is recorded with its time. It runs in a
thread of its own (``http.server``), so the code under test may run its own event loop or be another process.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGE_SIZE = 20


@dataclass
class FakePost:
    id: int
    text: str | None = None  # plain text: escaped, line breaks as <br/>
    html: str | None = None  # the text block's inner HTML as is, instead of text
    edited: bool = False
    date: str = "2025-11-21T10:00:00+00:00"
    service: bool = False
    photo: bool = False


@dataclass
class FakeChannel:
    name: str
    title: str
    kind: str = "public"  # public, private (a profile page only), missing (nobody holds the name)
    channel_id: int | None = None  # the numeric id the page shows in data-view; None: no data-view
    posts: dict[int, FakePost] = field(default_factory=dict)
    broken: bool = False  # serve a page whose post blocks have no data-post (a changed layout)

    def post(self, id: int, text: str | None = None, **kwargs) -> FakePost:
        self.posts[id] = FakePost(id, text, **kwargs)
        return self.posts[id]


def data_view(channel_id: int, post_id: int) -> str:
    raw = json.dumps({"c": -channel_id, "p": post_id, "t": 1764600000, "h": "0f0f"}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def render_post(channel: FakeChannel, post: FakePost) -> str:
    body = post.html if post.html is not None else escape(post.text or "").replace("\n", "<br/>")
    view = f' data-view="{data_view(channel.channel_id, post.id)}"' if channel.channel_id else ""
    classes = "tgme_widget_message text_not_supported_wrap js-widget_message" + (
        " service_message" if post.service else ""
    )
    post_attr = "" if channel.broken else f' data-post="{channel.name}/{post.id}"'
    photo = (
        f'<a class="tgme_widget_message_photo_wrap" href="https://t.me/{channel.name}/{post.id}" '
        "style=\"width:800px;background-image:url('https://cdn.example/p.jpg')\"></a>"
        if post.photo
        else ""
    )
    text = f'<div class="tgme_widget_message_text js-message_text" dir="auto">{body}</div>' if body else ""
    return f"""
<div class="tgme_widget_message_wrap js-widget_message_wrap">
  <div class="{classes}"{post_attr}{view}>
    <div class="tgme_widget_message_bubble">
      <div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" href="https://t.me/{channel.name}"><span dir="auto">{escape(channel.title)}</span></a></div>
      {photo}{text}
      <div class="tgme_widget_message_footer compact js-message_footer">
        <div class="tgme_widget_message_info short js-message_info">
          <span class="tgme_widget_message_views">1.2K</span>
          <span class="tgme_widget_message_meta">{"edited&nbsp;" if post.edited else ""}<a class="tgme_widget_message_date" href="https://t.me/{channel.name}/{post.id}"><time datetime="{post.date}" class="time">10:00</time></a></span>
        </div>
      </div>
    </div>
  </div>
</div>"""


def render_page(channel: FakeChannel, before: int | None = None) -> str:
    """The t.me/s page of ``channel``: the 20 newest posts, or the 20 before ``before``."""
    ids = sorted(i for i in channel.posts if before is None or i < before)[-PAGE_SIZE:]
    older = bool(ids) and any(i < ids[0] for i in channel.posts)
    more = (
        f'<div class="tgme_widget_message_centered js-messages_more_wrap"><a href="/s/{channel.name}?before={ids[0]}" '
        f'class="tme_messages_more js-messages_more" data-before="{ids[0]}"></a></div>'
        if older
        else ""
    )
    posts = "".join(render_post(channel, channel.posts[i]) for i in ids)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{escape(channel.title)} – Telegram</title>
<link rel="canonical" href="https://t.me/s/{channel.name}"></head>
<body class="widget_frame_base tgme_webpreview"><main class="tgme_main"><div class="tgme_container">
<section class="tgme_right_column"><div class="tgme_channel_info"><div class="tgme_channel_info_header">
<div class="tgme_channel_info_header_title"><span dir="auto">{escape(channel.title)}</span></div>
<div class="tgme_channel_info_header_username"><a href="https://t.me/{channel.name}">@{channel.name}</a></div>
</div></div></section>
<section class="tgme_channel_history js-message_history">{more}{posts}</section>
</div></main></body></html>"""


def render_profile(channel: FakeChannel | None, name: str) -> str:
    """t.me/NAME: a profile page, or the "contact @NAME" page of a name nobody holds."""
    if channel is None or channel.kind == "missing":
        inner = f'<div class="tgme_page_description">If you have <strong>Telegram</strong>, you can contact <a class="tgme_username_link" href="tg://resolve?domain={name}">@{name}</a> right away.</div>'
    else:
        inner = f'<div class="tgme_page_title"><span dir="auto">{escape(channel.title)}</span></div><div class="tgme_page_extra">1 234 members</div>'
    return f'<!DOCTYPE html><html><body><div class="tgme_page_wrap"><div class="tgme_page">{inner}</div></div></body></html>'


@dataclass
class Request:
    path: str
    query: str
    at: float
    status: int = 200


class FakeWebPreview:
    """The state: channels, failures to inject, answer latency, the requests seen."""

    def __init__(self, latency: float = 0.0):
        self.lock = threading.Lock()
        self.channels: dict[str, FakeChannel] = {}
        self.latency = latency
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it ever answered at once
        self._failures: dict[str, list[tuple[int, int | None]]] = {}
        self._stalls: dict[str, list[float]] = {}
        self._server: ThreadingHTTPServer | None = None

    def channel(self, name: str, title: str | None = None, **kwargs) -> FakeChannel:
        with self.lock:
            self.channels[name.lower()] = FakeChannel(name, title or name, **kwargs)
            return self.channels[name.lower()]

    def fail(self, name: str, status: int, retry_after: int | None = None, times: int = 1) -> None:
        with self.lock:
            self._failures.setdefault(name.lower(), []).extend([(status, retry_after)] * times)

    def stall(self, name: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` requests for the channel's page answer only after ``seconds`` (a client's time-out)."""
        with self.lock:
            self._stalls.setdefault(name.lower(), []).extend([seconds] * times)

    def _take_stall(self, path: str) -> float:
        parts = [p for p in path.split("/") if p]
        with self.lock:
            stalls = self._stalls.get(parts[-1].lower()) if len(parts) == 2 and parts[0] == "s" else None
            return stalls.pop(0) if stalls else 0.0

    def requests_for(self, name: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.lower().rstrip("/").endswith("/" + name.lower())]

    # -- HTTP ----------------------------------------------------------------------------------------
    def answer(self, path: str, query: str) -> tuple[int, dict, str]:
        parts = [p for p in path.split("/") if p]
        with self.lock:
            if len(parts) == 2 and parts[0] == "s":
                name = parts[1].lower()
                failures = self._failures.get(name)
                if failures:
                    status, retry_after = failures.pop(0)
                    return status, ({"Retry-After": str(retry_after)} if retry_after is not None else {}), "busy"
                channel = self.channels.get(name)
                if channel is None or channel.kind != "public":
                    return 302, {"Location": f"/{parts[1]}"}, ""
                before = parse_qs(query).get("before", [None])[0]
                return 200, {}, render_page(channel, int(before) if before else None)
            if len(parts) == 1:
                return 200, {}, render_profile(self.channels.get(parts[0].lower()), parts[0])
        return 404, {}, "not found"

    def start(self) -> FakeWebPreview:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    request = Request(url.path, url.query, time.time())
                    fake.requests.append(request)
                try:
                    if delay := fake.latency + fake._take_stall(url.path):
                        time.sleep(delay)
                    status, headers, body = fake.answer(url.path, url.query)
                    request.status = status
                    data = body.encode("utf-8")
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
