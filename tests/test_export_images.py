"""`compliance-bot scan` of a Telegram Desktop export made with media: the pictures' text is read and scanned
with the post; a picture missing from the export is counted, one that cannot be read is reported."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner

from bot.cli import CliApp, cli
from bot.image_text import ImageReader
from tests.fakes.images import render
from tests.test_history_scan import env_for, message


def test_an_export_with_media_is_scanned_with_the_text_of_its_pictures(tmp_path, ocr_engine, picture_posts, model_path):
    export = tmp_path / "ChatExport_2024-05-01"
    (export / "photos").mkdir(parents=True)
    (export / "files").mkdir()
    (export / "photos" / "photo_1.jpg").write_bytes(render(picture_posts["ico_en"], fmt="JPEG"))
    (export / "files" / "banner.png").write_bytes(render(picture_posts["benign_en"]))
    (export / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "outside.jpg").write_bytes(render("Presale outside the export"))
    not_included = "(File not included. Change data exporting settings to download.)"
    messages = [
        message(1, "", photo="photos/photo_1.jpg", width=940, height=200),
        message(2, "", photo=not_included),
        message(3, "airdrop claim today", photo="photos/gone.jpg"),
        message(4, "gm", photo="photos/broken.jpg"),
        message(5, "", file="files/banner.png", mime_type="image/png"),
        message(6, "", photo="../outside.jpg"),
        message(7, "", media_type="video_file", file=not_included, thumbnail=not_included),
    ]
    chat = {"name": "Gem Pics", "type": "public_channel", "id": 1500000009, "messages": messages}
    (export / "result.json").write_text(json.dumps(chat), encoding="utf-8")
    from classifier import load_model

    app = CliApp(classifier=load_model(model_path), image_reader=ImageReader(ocr_engine))
    result = CliRunner().invoke(
        cli, ["scan", "--workers", "1", str(export / "result.json")], env=env_for(tmp_path, model_path), obj=app
    )
    assert result.exit_code == 0, result.output
    assert "Pictures: 2 read, 4 not in the export (exported without media), 1 not readable" in result.stdout
    assert "message id 4: the picture photos/broken.jpg was not read: a corrupt or truncated image" in result.stderr
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        posts = {
            m: (label, image, text)
            for m, label, image, text in conn.execute("SELECT message_id, label, text_from_image, text FROM posts")
        }
    assert set(posts) == {1, 3, 4, 5}  # 2, 6 and 7 had no text and no picture that could be read
    assert posts[1][:2] == ("ico", 1) and posts[1][2].startswith("🖼 ")
    assert posts[5][:2] == ("benign", 1)
    assert posts[3][:2] == ("ico", 0) and posts[3][2] == "airdrop claim today"
    assert posts[4][:2] == ("benign", 0)
