"""The text every source scans: visible text first, then what the reader can reach but not read."""

from bot.post import scan_text
from classifier import MAX_CHARS


def test_hidden_parts_follow_the_visible_text_one_per_line():
    assert (
        scan_text("Big news", ["https://a.example", "Buy https://b.example"])
        == "Big news\nhttps://a.example\nBuy https://b.example"
    )


def test_a_hidden_part_already_visible_is_not_repeated_and_empty_parts_are_dropped():
    assert scan_text("see https://a.example", ["https://a.example", "", "@chan"]) == "see https://a.example\n@chan"


def test_nothing_to_read_is_none_but_hidden_parts_alone_are_text():
    assert scan_text(None) is None and scan_text("   ") is None and scan_text("", ["", ""]) is None
    assert scan_text("", ["https://a.example"]) == "https://a.example"


def test_the_text_is_capped_and_lone_surrogates_are_replaced():
    text = scan_text("a" * MAX_CHARS, ["https://late.example"])
    assert len(text) == MAX_CHARS and text == "a" * MAX_CHARS
    assert scan_text("bad \ud800 half", ["x\udfff"]) == "bad \ufffd half\nx\ufffd"


def test_text_read_from_images_follows_the_visible_text_one_marked_line_per_image():
    from bot.post import IMAGE_MARK, image_line, image_lines

    text = scan_text("Caption", ["https://a.example"], images=[["PRESALE", "  live  now "], [], ["收U 承兑"]])
    assert text == "Caption\n🖼 PRESALE live now\n🖼 收U 承兑\nhttps://a.example"
    assert image_lines(text) == ["PRESALE live now", "收U 承兑"]
    assert image_line(["", "  "]) is None and image_line(["x"]) == IMAGE_MARK + "x"
    assert scan_text(None, images=[["only the picture"]]) == "🖼 only the picture"
    assert scan_text(None, images=[[]]) is None  # a picture without legible text is nothing to read
