"""The pictures of a Telegram Desktop export made with media, read (bot/image_text.py) for ``compliance-bot scan``.

An export made with "photos" (and files, videos, GIFs) ticked keeps each picture next to ``result.json`` and names
it in the message, relative to the export's folder: ``"photo": "photos/photo_1@….jpg"``, an image sent as a file
(``"file"`` with an ``image/…`` ``"mime_type"``), and the first frame of a video or animation
(``"thumbnail"``). Made without media, the message says ``"(File not included. …)"`` instead. A picture that is not
there is counted, not an error: the post's text is scanned all the same; one that cannot be read is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot.image_text import ImageReader, ImageRefused


@dataclass
class PictureCounts:
    read: int = 0  # pictures whose text was read (if they held any)
    missing: int = 0  # named by a message, not in the export (exported without media, or moved)
    refused: int = 0  # there, but not an image, corrupt or too large


def picture_path(message: dict) -> str | None:
    """The path a message gives for its picture, as written in the export; None when it shows none."""
    if isinstance(message.get("photo"), str):
        return message["photo"]
    if isinstance(message.get("file"), str) and str(message.get("mime_type", "")).startswith("image/"):
        return message["file"]
    if isinstance(message.get("thumbnail"), str):  # a video's or an animation's first frame
        return message["thumbnail"]
    return None


class ExportPictures:
    """Reads the pictures of the messages of one export, whose files lie under ``folder``. OCR runs in the
    scan's own thread: the history scan forks its classification workers, which must not inherit OCR threads."""

    def __init__(self, reader: ImageReader, folder: Path, counts: PictureCounts, report: Callable[[str], None]):
        self.reader, self.folder, self.counts, self.report = reader, folder.resolve(), counts, report

    def lines(self, message: dict, where: str) -> list[str] | None:
        """The text lines of the message's picture; None when it has none that could be read."""
        named = picture_path(message)
        if named is None:
            return None
        path = self._inside(named)
        if path is None or not path.is_file():
            self.counts.missing += 1
            return None
        try:
            found = self.reader.read_bytes(path.read_bytes())
        except (ImageRefused, OSError) as exc:
            self.counts.refused += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.report(f"{where}: the picture {named} was not read: {reason}; its text is scanned alone")
            return None
        self.counts.read += 1
        return found.texts

    def _inside(self, named: str) -> Path | None:
        """The file a relative path names inside the export's folder; None for anything else ("(File not
        included …)", an absolute path, a path that climbs out with ..): an export only names its own files."""
        relative = PurePosixPath(named.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            return None
        path = (self.folder / relative).resolve()
        return path if path.is_relative_to(self.folder) else None
