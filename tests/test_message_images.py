"""The pictures of live posts: fetched with getFile from the (fake, in-memory) Bot API, read, and scanned with
the post; channel posts, group messages and edits; photos, image documents, video and animation thumbnails."""

from __future__ import annotations

import asyncio
import logging

import pytest
from telegram import Message

from bot.image_text import ImageReader
from bot.message_images import image_file
from tests.conftest import MODERATOR_CHAT_ID, outside_code
from tests.fakes import updates as U
from tests.fakes.images import ScriptedOcr, render


def photo_sizes(file_id: str = "p", sizes=((90, 60), (800, 250), (2560, 800))) -> list[dict]:
    return [
        {"file_id": f"{file_id}-{w}", "file_unique_id": f"u{file_id}{w}", "width": w, "height": h} for w, h in sizes
    ]


def thumb(file_id: str) -> dict:
    return {"file_id": file_id, "file_unique_id": f"u{file_id}", "width": 320, "height": 180}


def message_of(update: dict, bot=None) -> Message:
    return Message.de_json(next(iter(update.values())), bot)


async def with_reader(harness, engine, **kwargs):
    """The harness's bot with an OCR reader on ``engine`` (the session's real one, or a scripted one)."""
    harness.services.images = ImageReader(engine, **kwargs)
    return harness


def test_the_largest_photo_within_the_pixel_limit_is_taken_else_the_smallest():
    message = message_of(U.channel_post(1, None, photo=photo_sizes()))
    assert image_file(message, 2_000_000) == ("p-800", "photo")
    assert image_file(message, 3_000_000) == ("p-2560", "photo")
    assert image_file(message, 1_000) == ("p-90", "photo")  # every size over: the smallest, downscaled


def test_image_documents_and_video_and_animation_thumbnails_are_pictures_other_files_are_not():
    def doc(mime, size=1000):
        return {"file_id": "d", "file_unique_id": "ud", "mime_type": mime, "file_size": size}

    video = {"file_id": "v", "file_unique_id": "uv", "width": 1, "height": 1, "duration": 3, "thumbnail": thumb("vt")}
    cases = {
        "image": (dict(document=doc("image/png")), ("d", "image document")),
        "too big for getFile": (dict(document=doc("image/png", 30 << 20)), None),
        "pdf": (dict(document=doc("application/pdf")), None),
        "video": (dict(video=video), ("vt", "video thumbnail")),
        "animation": (dict(animation=video | {"file_id": "a"}), ("vt", "animation thumbnail")),
        "video without thumbnail": (dict(video={k: v for k, v in video.items() if k != "thumbnail"}), None),
        "text": ({}, None),
    }
    for name, (extra, expected) in cases.items():
        assert image_file(message_of(U.channel_post(1, "caption", **extra)), 2_000_000) == expected, name


async def test_a_photo_only_promotion_is_read_flagged_and_alerted_with_its_image_text(harness, ocr_engine):
    await with_reader(harness, ocr_engine)
    harness.api.add_file("p-800", render("PRESALE of $MOON is live now, buy before Friday"))
    await harness.send(U.channel_post(31, None, photo=photo_sizes()))
    assert [c.params["file_id"] for c in harness.api.calls_to("getFile")] == ["p-800"]
    assert harness.api.downloads == ["files/p-800"]
    [scanned] = harness.classifier.calls
    assert scanned.startswith("🖼 ") and "presale" in scanned.lower() and "friday" in scanned.lower()
    post = harness.storage.post(U.CHANNEL["id"], 31)
    assert post["label"] == "ico" and post["text_from_image"] == 1
    await harness.flush()
    [alert] = harness.sent_texts()
    assert "🖼 Read from the image: <code>" in alert and "Weighed from the image: <code>presale</code>" in alert
    assert "PRESALE" not in outside_code(alert)  # the image text is the post's: escaped, inside <code>


async def test_documents_thumbnails_group_messages_and_edits_are_read(harness):
    engine = ScriptedOcr(["Presale live, 1 BNB = 50,000 MOON"])
    await with_reader(harness, engine)
    for file_id in ("doc", "vt", "at", "edit"):
        harness.api.add_file(file_id, render("picture"))
    video = {"file_id": "v", "file_unique_id": "uv", "width": 1, "height": 1, "duration": 3}
    updates = [
        U.group_message(1, None, document={"file_id": "doc", "file_unique_id": "ud", "mime_type": "image/jpeg"}),
        U.channel_post(2, None, video=video | {"thumbnail": thumb("vt")}),
        U.group_message(3, None, animation=video | {"file_id": "a", "thumbnail": thumb("at")}),
        U.channel_post(2, "new caption", edited=True, video=video | {"thumbnail": thumb("edit")}),
    ]
    for update in updates:
        await harness.send(update)
    assert [c.params["file_id"] for c in harness.api.calls_to("getFile")] == ["doc", "vt", "at", "edit"]
    assert harness.classifier.calls[-1] == "new caption\n🖼 Presale live, 1 BNB = 50,000 MOON"
    assert all(harness.storage.post(chat, mid)["text_from_image"] == 1 for chat, mid in ((U.GROUP["id"], 1),))
    assert harness.storage.post(U.CHANNEL["id"], 2)["versions"] == 2  # the edit is a new version


async def test_a_corrupt_picture_or_a_failed_fetch_leaves_the_caption_scanned(harness, caplog):
    engine = ScriptedOcr(["never read"])
    await with_reader(harness, engine)
    harness.api.add_file("p-800", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    harness.api.fail("getFile", 500)
    with caplog.at_level(logging.WARNING, logger="bot.message_images"):
        await harness.send(U.channel_post(40, None, caption="airdrop claim today", photo=photo_sizes("q")))
        await harness.send(U.channel_post(41, None, caption="presale today", photo=photo_sizes()))
    assert harness.classifier.calls == ["airdrop claim today", "presale today"]
    assert engine.sizes == []
    assert harness.storage.post(U.CHANNEL["id"], 41)["text_from_image"] == 0
    warnings = [r.getMessage() for r in caplog.records]
    assert any("message 40: not read: fetching the photo failed" in w for w in warnings), warnings
    assert any("message 41: not read: the photo: not an image" in w for w in warnings), warnings


async def test_with_ocr_off_a_photo_only_post_is_not_fetched(bot_factory):
    harness = await bot_factory(ocr_enabled=False)
    assert harness.services.images is None
    await harness.send(U.channel_post(50, None, photo=photo_sizes()))
    assert harness.api.calls_to("getFile") == [] and harness.classifier.calls == []


async def test_a_post_being_read_counts_as_in_flight_so_its_update_is_not_confirmed(harness):
    engine = ScriptedOcr(["presale now"])
    engine.hold()
    await with_reader(harness, engine)
    harness.api.add_file("p-800", render("x"))
    sending = asyncio.create_task(harness.send(U.channel_post(60, None, photo=photo_sizes())))
    for _ in range(500):
        if engine.running:
            break
        await asyncio.sleep(0.01)
    assert engine.running == 1 and harness.services.scans.in_flight == 1
    engine.release()
    await sending
    assert harness.services.scans.in_flight == 0
    assert harness.storage.post(U.CHANNEL["id"], 60)["label"] == "ico"


@pytest.mark.parametrize("forwarded", [False, True])
async def test_a_picture_sent_in_private_by_a_moderator_is_checked_with_its_text(harness, forwarded):
    engine = ScriptedOcr(["币安注册返佣 邀请码 ABC123 收U"])
    await with_reader(harness, engine)
    harness.api.add_file("p-800", render("x"))
    extra = {"forward_origin": {"type": "hidden_user", "sender_user_name": "Someone", "date": 1}} if forwarded else {}
    update = U.private_message(70, "", photo=photo_sizes(), **extra)
    del update["message"]["text"]
    await harness.send(update)
    [reply] = [c.params["text"] for c in harness.api.calls_to("sendMessage")]
    assert "Trading service" in reply and "🖼 Read from the image: <code>币安注册返佣 邀请码 ABC123 收U</code>" in reply
    assert "Weighed from the image: <code>收u</code>" in reply


async def test_a_strangers_picture_is_not_read_and_its_caption_is_checked(harness):
    engine = ScriptedOcr(["presale"])
    await with_reader(harness, engine)
    update = U.private_message(71, "", user=U.STRANGER, photo=photo_sizes(), caption="vip signals inside")
    del update["message"]["text"]
    await harness.send(update)
    replies = [c.params["text"] for c in harness.api.calls_to("sendMessage")]
    assert replies[0] == "Only moderators' pictures are read; checking the text alone."
    assert "Trading service" in replies[1] and "Read from the image" not in replies[1]
    assert harness.api.calls_to("getFile") == [] and engine.sizes == []
    assert MODERATOR_CHAT_ID not in [c.params["chat_id"] for c in harness.api.calls_to("sendMessage")]


async def test_a_picture_that_cannot_be_fetched_is_explained_to_the_moderator_without_the_token(harness):
    from tests.conftest import TEST_TOKEN

    await with_reader(harness, ScriptedOcr(["never"]))
    update = U.private_message(72, "", photo=photo_sizes("gone"), caption="gm all")  # no such file: a 404
    del update["message"]["text"]
    await harness.send(update)
    replies = [c.params["text"] for c in harness.api.calls_to("sendMessage")]
    assert replies[0].startswith("The picture was not read: fetching the photo failed (")
    assert replies[0].endswith("Checking the text alone.") and "Benign" in replies[1]
    assert harness.api.downloads == ["files/gone-800"]
    assert not any(TEST_TOKEN in reply for reply in replies)
