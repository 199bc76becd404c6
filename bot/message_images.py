"""The images of a live message, fetched from Telegram and read (bot/image_text.py) so their text is scanned.

A message shows at most one picture the Bot API lets a bot download: a photo (Telegram sends it in several
sizes: the largest within OCR_MAX_PIXELS is taken, so that no pixels are fetched only to be thrown away), an
image sent as a document, or the first frame of a video or an animation (its thumbnail). The file is fetched
with ``getFile`` and downloaded from its file URL, read in the reader's worker threads, and never stored.
"""

from __future__ import annotations

import logging

from telegram import Message, PhotoSize
from telegram.error import TelegramError

from bot.image_text import ImageReader, ImageRefused

log = logging.getLogger(__name__)

# The Bot API's getFile serves files of at most 20 MB.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


def image_file(message: Message, max_pixels: int) -> tuple[str, str] | None:
    """The file id of the message's picture to read and what it is ("photo", "image document", "video thumbnail",
    "animation thumbnail"); None when it shows none."""
    if message.photo:
        fitting = [p for p in message.photo if p.width * p.height <= max_pixels]
        # Over the limit in every size (a hostile update: Telegram's smallest is 90 px): the smallest, downscaled.
        size = max(fitting, key=_pixels) if fitting else min(message.photo, key=_pixels)
        return size.file_id, "photo"
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        if document.file_size and document.file_size > MAX_DOWNLOAD_BYTES:
            return None
        return document.file_id, "image document"
    for kind in ("video", "animation"):
        media = getattr(message, kind)
        if media is not None and media.thumbnail is not None:
            return media.thumbnail.file_id, f"{kind} thumbnail"
    return None


def _pixels(size: PhotoSize) -> int:
    return size.width * size.height


async def picture_text(message: Message, reader: ImageReader) -> list[str] | None:
    """The text lines of the message's picture (none when it holds no text); None when the message shows no
    picture. Raises ImageRefused with the reason when it cannot be fetched or read."""
    if (found := image_file(message, reader.max_pixels)) is None:
        return None
    file_id, kind = found
    bot = message.get_bot()
    try:
        file = await bot.get_file(file_id)
        if file.file_size and file.file_size > MAX_DOWNLOAD_BYTES:
            raise ImageRefused(f"the {kind} is over the Bot API's 20 MB download limit ({file.file_size} bytes)")
        data = await file.download_as_bytearray()
    except (TelegramError, RuntimeError) as exc:  # RuntimeError: getFile gave no file_path
        # The file URL holds the token; the reason may be shown to a moderator in a chat, never the token.
        detail = str(exc).replace(bot.token, "<token>")
        raise ImageRefused(f"fetching the {kind} failed ({type(exc).__name__}: {detail})") from None
    try:
        return (await reader.read(bytes(data))).texts
    except ImageRefused as exc:
        raise ImageRefused(f"the {kind}: {exc}") from None


async def read_message_image(message: Message, reader: ImageReader | None) -> list[str]:
    """The text lines of the message's picture; none when it has no picture, OCR is off, or the picture
    cannot be fetched or read (logged with the reason: the message's own text is scanned all the same)."""
    if reader is None:
        return []
    try:
        lines = await picture_text(message, reader)
    except ImageRefused as exc:
        log.warning("chat %d message %d: not read: %s", message.chat.id, message.message_id, exc)
        return []
    if lines is not None:
        log.info("chat %d message %d: %d lines read from its picture", message.chat.id, message.message_id, len(lines))
    return lines or []
