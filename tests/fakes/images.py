"""Pictures of posts rendered at test time (Pillow and the WQY Micro Hei font, which holds Chinese and Latin
letters; CI installs Debian's fonts-wqy-microhei), and OCR engines for tests that are not about reading."""

from __future__ import annotations

import io
import textwrap
import threading
import time

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def renderable(text: str) -> bool:
    """Whether the font draws every character (no emoji or symbols it lacks: they would render as boxes)."""
    return all(ch.isascii() or "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


def render(text: str, *, size: int = 28, width: int = 900, fmt: str = "PNG", scale: float = 1.0) -> bytes:
    """A banner of ``text`` as a post's picture: dark letters on a light background, wrapped to ``width`` px."""
    font = ImageFont.truetype(FONT, size)
    chinese = sum(not ch.isascii() for ch in text) > len(text) / 4
    per_line = max(8, int(width / (size if chinese else size * 0.55)))
    lines = [line for para in text.splitlines() for line in (textwrap.wrap(para, per_line) or [""])]
    step = int(size * 1.5)
    image = Image.new("RGB", (width + 40, 40 + step * len(lines)), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((20, 20 + step * n), line, fill=(20, 20, 30), font=font)
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


class ScriptedOcr:
    """An OCR engine that answers with set lines, records the image sizes it was given, and can be held
    (``hold``/``release``) to show what happens while a read is under way."""

    def __init__(self, lines: list[str] | None = None, seconds: float = 0.0):
        self.lines = lines or []
        self.seconds = seconds  # how long each read takes
        self.sizes: list[tuple[int, int]] = []
        self.running = 0
        self.most_at_once = 0
        self._gate = threading.Event()
        self._gate.set()
        self._lock = threading.Lock()

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def read(self, image):
        with self._lock:
            self.sizes.append((image.shape[1], image.shape[0]))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            self._gate.wait(30)
            time.sleep(self.seconds)
            return [(line, 0.99) for line in self.lines]
        finally:
            with self._lock:
                self.running -= 1
