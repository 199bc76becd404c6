"""One page of a public channel's web preview (``https://t.me/s/<name>``) read into posts: pure, no HTTP.

Telegram serves browsers the latest posts of a public channel as HTML: a ``div.tgme_channel_info`` header
(title, ``@username``), then one ``div.tgme_widget_message[data-post="name/123"]`` per post with the text
(``.tgme_widget_message_text``: ``<br>``, links, emoji as ``<i class="emoji"><b>🚀</b></i>``), photos and
videos (their caption is the text), "forwarded from", a link preview, the date (``time[datetime]``) and the
"edited" mark in the footer; service messages ("Channel created") carry ``.service_message``. Older posts are
one ``?before=ID`` link away (``a.tme_messages_more[data-before]``).

The page is read with selectolax's HTML parser. The scanned text is built like every source's
(:func:`bot.post.scan_text`): the visible text, then what a reader can reach but not read (URLs behind
links, the link preview, the channel it was forwarded from), so a post seen here and through the Bot API
reads the same, apart from the link preview, which only this source sees.

A page this module does not recognise (a post block without a ``name/id`` it can read: Telegram changed
its layout) raises :class:`PageLayoutError` for the whole page, so nothing half-read is stored.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from bot.post import chat_id_problem, message_id_problem, post_date, scan_text

# Bot API ids of channels and supergroups are -(10^12 + the channel's own id) (the "-100" prefix).
CHANNEL_ID_OFFSET = 10**12


# What a post carries besides text, by the class of its element; one query finds them all, in page order.
MEDIA = {
    "tgme_widget_message_photo_wrap": "photo",
    "tgme_widget_message_video_player": "video",
    "tgme_widget_message_voice_player": "voice",
    "tgme_widget_message_document": "document",
}
MEDIA_SELECTOR = ", ".join(f".{name}" for name in MEDIA)


class PageLayoutError(ValueError):
    """The page is not laid out as this reader knows Telegram's web preview."""


@dataclass(frozen=True)
class WebPost:
    """One post block of the page."""

    channel: str  # the username as the post's link spells it
    message_id: int
    text: str | None  # the scanned text (visible text, then hidden parts); None: nothing to read
    date: float | None = None
    edited: bool = False
    forwarded_from: str | None = None
    media: tuple[str, ...] = ()  # "photo", "video", … in page order
    service: bool = False  # "Channel created", "Channel photo updated": nothing anyone wrote


@dataclass(frozen=True)
class ChannelPage:
    """What one page says about its channel, and its posts, oldest first."""

    username: str | None = None
    title: str | None = None
    chat_id: int | None = None  # the Bot API id, when the page carries the channel's numeric id
    posts: list[WebPost] = field(default_factory=list)
    before: int | None = None  # the id to ask ``?before=`` for the page of older posts; None: this is the oldest
    channel_info: bool = False  # the channel header is there (a page of a channel with a public post list)


def parse_page(html: str | bytes) -> ChannelPage:
    """Read one t.me/s page. Raises PageLayoutError when a post block cannot be read."""
    tree = LexborHTMLParser(html)
    info = tree.css_first(".tgme_channel_info")
    title = username = None
    if info is not None:
        title = _text(info.css_first(".tgme_channel_info_header_title"))
        handle = _text(info.css_first(".tgme_channel_info_header_username"))
        username = handle.lstrip("@") if handle else None
    posts, chat_id = [], None
    for block in tree.css(".tgme_widget_message"):
        post = _post(block)
        posts.append(post)
        chat_id = chat_id or _chat_id(block.attributes.get("data-view"))
    if posts:
        username = posts[-1].channel  # the links spell the username as Telegram does (case included)
    posts.sort(key=lambda p: p.message_id)
    return ChannelPage(
        username=username,
        title=title,
        chat_id=chat_id,
        posts=posts,
        before=_before(tree),
        channel_info=info is not None,
    )


def _post(block: LexborNode) -> WebPost:
    classes = (block.attributes.get("class") or "").split()
    data_post = block.attributes.get("data-post")
    channel, _, number = (data_post or "").partition("/")
    plausible = channel.isascii() and channel.replace("_", "").isalnum()  # what usernames are made of
    if not plausible or not number.isascii() or not number.isdigit() or message_id_problem(int(number)) is not None:
        raise PageLayoutError(f"a post block without a readable data-post (name/id): {data_post!r}")
    message_id = int(number)
    service = "service_message" in classes
    body = block.css_first(".tgme_widget_message_text")
    visible = _visible_text(body) if body is not None else ""
    hidden = _link_targets(body) if body is not None else []
    forwarded = _forwarded_from(block)
    if forwarded:
        hidden.append(forwarded)
    preview = _link_preview(block)
    if preview and _bare(preview[0]) in visible.lower():
        preview = preview[1:]  # the preview's URL is one the text shows
    hidden += preview
    date = None
    moment = block.css_first(".tgme_widget_message_date time[datetime]")
    if moment is not None:
        try:
            date = post_date(moment.attributes.get("datetime"), "datetime")
        except ValueError:
            date = None  # a post without a usable date is still a post
    meta = block.css_first(".tgme_widget_message_meta")
    edited = meta is not None and "edited" in (meta.text() or "").lower()
    media = tuple(
        next(kind for name, kind in MEDIA.items() if name in (node.attributes.get("class") or ""))
        for node in block.css(MEDIA_SELECTOR)
    )
    return WebPost(
        channel=channel,
        message_id=message_id,
        text=None if service else scan_text(visible, hidden),
        date=date,
        edited=edited,
        forwarded_from=forwarded,
        media=media,
        service=service,
    )


def _visible_text(node: LexborNode) -> str:
    """The text as a reader sees it: ``<br>`` is a line break, an emoji image its character."""
    parts = []
    for child in node.traverse(include_text=True):
        if child.tag == "-text":
            parts.append(child.text_content or "")
        elif child.tag == "br":
            parts.append("\n")
    return "".join(parts).strip()


def _bare(url: str) -> str:
    url = url.strip().lower()
    for prefix in ("https://", "http://", "www."):
        url = url.removeprefix(prefix)
    return url.rstrip("/")


def _link_targets(body: LexborNode) -> list[str]:
    """URLs behind links whose text does not show them; mentions and hashtags show what they link to."""
    targets = []
    for link in body.css("a[href]"):
        href = (link.attributes.get("href") or "").strip()
        shown = (link.text() or "").strip()
        if not href or shown.startswith(("@", "#", "$")) or _bare(shown) == _bare(href):
            continue
        if href.startswith("?q="):  # a hashtag search within the page
            continue
        targets.append(href)
    return targets


def _forwarded_from(block: LexborNode) -> str | None:
    """The forwarded-from chat as the Bot API source names it: "Title @username"."""
    node = block.css_first(".tgme_widget_message_forwarded_from_name")
    if node is None:
        return None
    name = _text(node)
    href = node.attributes.get("href") or ""
    username = None
    if "t.me/" in href:
        username = href.split("t.me/", 1)[1].removeprefix("s/").split("/")[0].split("?")[0] or None
    return " ".join(x for x in (name, f"@{username}" if username else None) if x) or None


def _link_preview(block: LexborNode) -> list[str]:
    preview = block.css_first(".tgme_widget_message_link_preview")
    if preview is None:
        return []
    parts = [preview.attributes.get("href") or ""]
    for selector in (".link_preview_site_name", ".link_preview_title", ".link_preview_description"):
        parts.append(_text(preview.css_first(selector)) or "")
    return [p for p in parts if p]


def _chat_id(data_view: str | None) -> int | None:
    """The Bot API id from a post's ``data-view`` (base64 JSON whose "c" is minus the channel's id), if any."""
    if not data_view:
        return None
    try:
        view = json.loads(base64.urlsafe_b64decode(data_view + "=" * (-len(data_view) % 4)))
        channel = -int(view["c"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if channel <= 0:
        return None
    chat_id = -(CHANNEL_ID_OFFSET + channel)
    return chat_id if chat_id_problem(chat_id) is None else None


def _before(tree: LexborHTMLParser) -> int | None:
    more = tree.css_first("a.tme_messages_more[data-before]")
    value = more.attributes.get("data-before") if more is not None else None
    if value is None:
        prev = tree.css_first("link[rel=prev][href]")
        href = prev.attributes.get("href") if prev is not None else None
        if href and "before=" in href:
            value = href.split("before=", 1)[1].split("&")[0]
    if value and value.isdigit() and message_id_problem(int(value)) is None and int(value) > 1:
        return int(value)
    return None


def _text(node: LexborNode | None) -> str | None:
    if node is None:
        return None
    text = " ".join((node.text() or "").split())
    return text or None


def profile_kind(html: str | bytes) -> str | None:
    """What a t.me/NAME page (not /s/) shows: "profile" (a chat or user exists under that name), "missing" (the
    page offers to contact a name nobody holds), or None (a page this reader does not know)."""
    tree = LexborHTMLParser(html)
    if tree.css_first(".tgme_page") is None:
        return None
    return "profile" if tree.css_first(".tgme_page_title") is not None else "missing"
