"""Reading the text inside images: corpus posts rendered as pictures are read closely enough for the model to
judge them as it judges the text, and whatever cannot be read is refused with a reason."""

from __future__ import annotations

import asyncio
import difflib
import io

import pytest
from PIL import Image

from bot.image_text import ImageReader, ImageRefused, decode
from bot.post import scan_text
from tests.fakes.images import ScriptedOcr, render


def similarity(read: str, source: str) -> float:
    """How close OCR came, ignoring case and spaces (OCR joins and splits words at will)."""

    def key(text):
        return "".join(text.casefold().split())

    return difflib.SequenceMatcher(None, key(read), key(source)).ratio()


@pytest.fixture(scope="module")
def pictures_read(ocr_engine, picture_posts):
    """Each picture post rendered and read once with the real engine (the expensive part of this module)."""
    reader = ImageReader(ocr_engine)
    try:
        return {name: (text, reader.read_now(render(text))) for name, text in picture_posts.items()}
    finally:
        reader.close()


def test_english_and_chinese_pictures_read_close_to_their_text(pictures_read):
    for name, (source, found) in pictures_read.items():
        read = " ".join(found.texts)
        assert similarity(read, source) >= 0.85, (name, source, read)
        assert all(0.5 <= confidence <= 1.0 for _, confidence in found.lines)
        assert not found.downscaled


def test_promotion_only_in_a_picture_is_flagged_and_news_is_not(pictures_read, trained_model):
    labels = {}
    for name, (_, found) in pictures_read.items():
        text = scan_text(None, images=[found.texts])
        assert text.startswith("🖼 ")
        labels[name] = trained_model.predict(text).label
        # The mark is for people: the model's normalisation drops it, so it weighs nothing.
        assert trained_model.predict(text).scores == trained_model.predict(" ".join(found.texts)).scores
    assert labels == {"ico_en": "ico", "trading_service_zh": "trading_service", "benign_en": "benign"}


def test_a_picture_over_the_pixel_limit_is_downscaled_and_still_read(ocr_engine, picture_posts):
    source = picture_posts["ico_en"]
    big = render(source, scale=2.0)  # about 1880 × 600: 1.1 megapixels
    reader = ImageReader(ocr_engine, max_pixels=600_000)
    try:
        found = reader.read_now(big)
    finally:
        reader.close()
    assert found.downscaled and found.size[0] * found.size[1] <= 600_000
    assert similarity(" ".join(found.texts), source) >= 0.8


def test_downscaling_keeps_the_aspect_and_the_engine_sees_the_small_image():
    engine = ScriptedOcr(["PRESALE"])
    reader = ImageReader(engine, max_pixels=1_000_000)
    image = Image.new("RGB", (4000, 2000), "white")
    out = io.BytesIO()
    image.save(out, "JPEG")
    found = reader.read_now(out.getvalue())
    width, height = engine.sizes[0]
    assert found.downscaled and width * height <= 1_000_000 and abs(width / height - 2) < 0.01
    assert found.texts == ["PRESALE"]
    small, downscaled = decode(render("small"), 1_000_000)
    assert not downscaled and small.mode == "RGB"
    reader.close()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"Presale live now, buy $MOON", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
        (render("Presale live now")[:400], "corrupt or truncated"),
        (render("Presale live now", fmt="JPEG")[:-600], "corrupt or truncated"),
    ],
    ids=["empty", "text", "png-header-only", "truncated-png", "truncated-jpeg"],
)
def test_corrupt_files_and_non_images_are_refused_with_a_reason(data, reason):
    engine = ScriptedOcr(["never"])
    reader = ImageReader(engine)
    with pytest.raises(ImageRefused, match=reason):
        reader.read_now(data)
    assert engine.sizes == []  # refused before the engine
    reader.close()


def test_a_decompression_bomb_is_refused_without_decoding_it():
    header = io.BytesIO()
    Image.new("1", (20_000, 10_000)).save(header, "PNG")  # 200 megapixels, a few kilobytes of PNG
    with pytest.raises(ImageRefused, match="too large to decode safely"):
        ImageReader(ScriptedOcr()).read_now(header.getvalue())


def test_an_engine_failure_is_a_refusal_not_a_crash():
    class Broken:
        def read(self, image):
            raise RuntimeError("onnx says no")

    with pytest.raises(ImageRefused, match="OCR engine failed.*onnx says no"):
        ImageReader(Broken()).read_now(render("text"))


def test_lines_below_the_confidence_floor_are_dropped():
    class Noisy:
        def read(self, image):
            return [("Presale live", 0.97), ("~~//", 0.21), ("  ", 0.9)]

    assert ImageReader(Noisy()).read_now(render("x")).texts == ["Presale live"]


async def test_reading_runs_off_the_event_loop_bounded_and_gives_up_after_the_timeout():
    engine = ScriptedOcr(["slow"])
    engine.hold()
    reader = ImageReader(engine, concurrency=2, timeout=0.5)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(ticker())
    results = await asyncio.gather(*(reader.read(render("x")) for _ in range(4)), return_exceptions=True)
    running.cancel()
    assert all(isinstance(r, ImageRefused) and "OCR_TIMEOUT_SECONDS" in str(r) for r in results)
    assert ticks > 5  # the loop kept running while the engine was stuck
    assert engine.most_at_once == 2  # never more reads at once than OCR_CONCURRENCY
    engine.release()
    assert (await reader.read(render("x"))).texts == ["slow"]
    reader.close()


async def test_a_burst_of_pictures_is_read_in_turn_and_waiting_for_a_turn_does_not_count_against_the_timeout():
    engine = ScriptedOcr(["presale"], seconds=0.2)
    reader = ImageReader(engine, concurrency=1, timeout=1.0)
    results = await asyncio.gather(*(reader.read(render("x")) for _ in range(8)))  # 1.6 s of reading in all
    assert [r.texts for r in results] == [["presale"]] * 8 and engine.most_at_once == 1
    reader.close()


def test_settings_build_the_reader_or_none(tmp_path):
    from tests.conftest import make_settings

    reader = ImageReader.from_settings(
        make_settings(tmp_path, ocr_max_pixels=500_000, ocr_timeout_seconds=7, ocr_concurrency=3)
    )
    assert (reader.max_pixels, reader.timeout, reader._pool._max_workers) == (500_000, 7, 3)
    assert ImageReader.from_settings(make_settings(tmp_path, ocr_enabled=False)) is None
