"""End to end: the real `compliance-bot run` process, the real model and OCR engine, the fake Bot API over HTTP
serving a photo through getFile and its file URL: a promotion that is only in a picture alerts."""

from __future__ import annotations

import pytest

from tests.fakes import updates as U
from tests.fakes.images import render
from tests.test_app_e2e import alerts_sent, db_rows, wait_for

pytestmark = pytest.mark.slow


def test_a_photo_only_promotion_post_without_caption_alerts(server, run_bot, tmp_path, picture_posts):
    bot = run_bot()
    server.api.add_file("banner-big", render(picture_posts["ico_en"], fmt="JPEG"))
    sizes = [(90, 30, "banner-small"), (940, 200, "banner-big")]
    photo = [{"file_id": f, "file_unique_id": f"u-{f}", "width": w, "height": h} for w, h, f in sizes]
    server.api.push_update(U.channel_post(80, None, photo=photo))
    alert = wait_for(lambda: alerts_sent(server), timeout=120, what="the alert on the picture")[0]
    text = alert.params["text"]
    assert "ICO" in text and "https://t.me/cryptogems/80" in text and "🖼 Read from the image: <code>" in text
    assert [c.params["file_id"] for c in server.api.calls_to("getFile")] == ["banner-big"]
    assert server.api.downloads == ["files/banner-big"]
    [(label, from_image, stored)] = db_rows(tmp_path, "SELECT label, text_from_image, text FROM posts")
    assert (label, from_image) == ("ico", 1) and stored.startswith("🖼 ")
    assert "lines read from its picture" in bot.log()
