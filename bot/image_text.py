"""Reading the text inside images (OCR): bytes in, lines of text with their confidence out.

Pump groups show the coin in a picture, ICO banners carry the sale terms and referral code in the image, OTC
desks post rate cards as screenshots. :class:`ImageReader` is the one interface the rest of the bot uses:

- the bytes are checked and decoded with Pillow first: an empty file, a file that is no image, a truncated or
  corrupt one is refused with :class:`ImageRefused`, whose message says why;
- an image over ``max_pixels`` is downscaled (Pillow) before the engine sees it, so that a 50-megapixel photo
  costs what a large screenshot costs;
- the engine runs in a pool of ``concurrency`` worker threads (never on the event loop), each call with one
  inference thread, so that OCR uses at most ``concurrency`` cores whatever arrives;
- a read that takes longer than ``timeout`` (counted from its start, not from its turn in a burst) is given up
  (:class:`ImageRefused`); the worker finishes it in the background, and the pool stays bounded.

The engine is behind :class:`OcrEngine` (``read(BGR array) -> [(text, confidence)]``) so that it can change;
:class:`RapidOcrEngine` is PP-OCR (Chinese and English) on ONNX Runtime from ``rapidocr-onnxruntime``, whose
wheel carries its models: nothing is downloaded at run time. It is created once, lazily, on first use.
"""

from __future__ import annotations

import asyncio
import io
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

# Lines the engine reads with less confidence than this are noise (texture read as letters), not text.
MIN_CONFIDENCE = 0.5
# Below this many pixels on a side nothing legible fits; Telegram's smallest thumbnails are 90 px.
MIN_SIDE = 8


class ImageRefused(Exception):
    """The bytes cannot be read as an image (or not in time); the message says why, for a person."""


@dataclass(frozen=True)
class ImageText:
    """What was read from one image: its lines (top to bottom, as the engine orders them) with confidences,
    the size the engine saw and whether it was downscaled to get there."""

    lines: list[tuple[str, float]]
    size: tuple[int, int]
    downscaled: bool = False

    @property
    def texts(self) -> list[str]:
        return [text for text, _ in self.lines]


class OcrEngine(Protocol):
    def read(self, image: np.ndarray) -> list[tuple[str, float]]:
        """The text lines of an image (a height × width × 3 BGR array), each with a confidence in 0-1."""
        ...


class RapidOcrEngine:
    """PP-OCR (Chinese and English) through rapidocr-onnxruntime, created on first use; one inference thread
    per call, so that the reader's pool size is the number of cores OCR may take."""

    def __init__(self):
        self._ocr = None
        self._lock = threading.Lock()

    def _engine(self):
        with self._lock:  # two first calls at once must not load the models twice
            if self._ocr is None:
                from rapidocr_onnxruntime import RapidOCR

                self._ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
            return self._ocr

    def read(self, image: np.ndarray) -> list[tuple[str, float]]:
        result, _ = self._engine()(image)
        return [(str(text), float(score)) for _, text, score in result or ()]


def decode(data: bytes, max_pixels: int) -> tuple[Image.Image, bool]:
    """The image in ``data`` as RGB, downscaled to at most ``max_pixels``; raises ImageRefused with the
    reason when it is empty, no image, corrupt or too small to hold text."""
    if not data:
        raise ImageRefused("the file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns of "decompression bombs" (more than MAX_IMAGE_PIXELS); they are refused below instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > Image.MAX_IMAGE_PIXELS:  # decoding it whole would take gigabytes
                raise ImageRefused(
                    f"too large to decode safely ({width}×{height} pixels, over {Image.MAX_IMAGE_PIXELS:,})"
                )
            downscaled = width * height > max_pixels
            if downscaled:
                scale = (max_pixels / (width * height)) ** 0.5
                target = (max(1, int(width * scale)), max(1, int(height * scale)))
                image.draft("RGB", target)  # a JPEG decodes straight at 1/2, 1/4 or 1/8 size: far less memory
                image = image.convert("RGB").resize(target, Image.Resampling.LANCZOS)
            else:
                image = image.convert("RGB")  # decodes the pixels: a truncated or corrupt file fails here
    except UnidentifiedImageError:
        raise ImageRefused("not an image (no format Pillow knows: JPEG, PNG, WebP, GIF, BMP …)") from None
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"too large to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for damaged data
        raise ImageRefused(f"a corrupt or truncated image ({exc})") from None
    if min(image.size) < MIN_SIDE:
        raise ImageRefused(f"too small to hold text ({image.size[0]}×{image.size[1]} pixels)")
    return image, downscaled


class ImageReader:
    """Reads the text of images: checked and downscaled with Pillow, OCR in a bounded pool of worker threads,
    each call given up after ``timeout`` seconds. Used from the event loop (:meth:`read`) and from the
    command line (:meth:`read_now`)."""

    def __init__(
        self,
        engine: OcrEngine | None = None,
        *,
        max_pixels: int = 2_000_000,
        timeout: float = 30.0,
        concurrency: int = 1,
        min_confidence: float = MIN_CONFIDENCE,
    ):
        self.engine = engine if engine is not None else RapidOcrEngine()
        self.max_pixels = max_pixels
        self.timeout = timeout
        self.min_confidence = min_confidence
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ocr")
        self._concurrency = concurrency
        self._turns: asyncio.Semaphore | None = None  # made in the event loop that reads
        self._turns_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings, engine: OcrEngine | None = None) -> ImageReader | None:
        """The reader the settings ask for (OCR_*), or None when OCR_ENABLED is off."""
        if not settings.ocr_enabled:
            return None
        return cls(
            engine,
            max_pixels=settings.ocr_max_pixels,
            timeout=settings.ocr_timeout_seconds,
            concurrency=settings.ocr_concurrency,
        )

    def read_bytes(self, data: bytes) -> ImageText:
        """Decode and read one image in the calling thread; raises ImageRefused with the reason."""
        image, downscaled = decode(data, self.max_pixels)
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        try:
            lines = self.engine.read(bgr)
        except Exception as exc:  # the engine's own failure on an odd image must not stop a scan
            raise ImageRefused(f"the OCR engine failed on it ({type(exc).__name__}: {exc})") from None
        kept = [(text.strip(), conf) for text, conf in lines if conf >= self.min_confidence and text.strip()]
        return ImageText(kept, image.size, downscaled)

    async def read(self, data: bytes) -> ImageText:
        """Read one image in the pool without blocking the event loop; ImageRefused when it cannot be read or
        its reading takes longer than the timeout."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns_loop is not loop:
            self._turns, self._turns_loop = asyncio.Semaphore(self._concurrency), loop
        # Images wait for their turn here, not in the pool's queue: the timeout counts reading, not waiting
        # behind the other pictures of a burst.
        async with self._turns:
            future = loop.run_in_executor(self._pool, self.read_bytes, data)
            try:
                return await asyncio.wait_for(future, self.timeout)
            except TimeoutError:
                raise ImageRefused(f"reading it took longer than OCR_TIMEOUT_SECONDS ({self.timeout:g} s)") from None

    def read_now(self, data: bytes) -> ImageText:
        """Read one image in the pool and wait for it, for the command line; ImageRefused as :meth:`read`."""
        future = self._pool.submit(self.read_bytes, data)
        try:
            return future.result(self.timeout)
        except FutureTimeout:
            raise ImageRefused(f"reading it took longer than OCR_TIMEOUT_SECONDS ({self.timeout:g} s)") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
