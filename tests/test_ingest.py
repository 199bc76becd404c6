"""What the bot reads out of a message: visible text plus what hides behind links, buttons and forwards."""

from telegram import Message

from bot.ingest import describe, message_text
from classifier import MAX_CHARS
from tests.fakes import updates as U


def message(text=None, **fields) -> Message:
    return Message.de_json(U.channel_post(1, text, **fields)["channel_post"], None)


def test_text_links_url_buttons_and_forward_origin_are_scanned():
    m = message(
        text="Big news inside",
        entities=[{"type": "text_link", "offset": 0, "length": 3, "url": "https://moon-sale.example/ref=88X"}],
        reply_markup={
            "inline_keyboard": [
                [{"text": "Buy now", "url": "https://presale.example"}, {"text": "noop", "callback_data": "x"}]
            ]
        },
        forward_origin={
            "type": "channel",
            "date": 1,
            "message_id": 5,
            "chat": {"id": -1002, "type": "channel", "title": "VIP Signals", "username": "vipsig"},
        },
    )
    assert message_text(m).split("\n") == [
        "Big news inside",
        "https://moon-sale.example/ref=88X",
        "Buy now https://presale.example",
        "VIP Signals @vipsig",
    ]


def test_caption_is_scanned_and_a_sticker_has_nothing():
    assert (
        message_text(
            message(caption="Airdrop claim", photo=[{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1}])
        )
        == "Airdrop claim"
    )
    sticker = message(
        sticker={
            "file_id": "s",
            "file_unique_id": "su",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
        }
    )
    assert message_text(sticker) is None
    assert describe(sticker) == "sticker"


def test_scan_text_is_bounded():
    buttons = [[{"text": "x" * 60, "url": f"https://example.com/{i}/" + "y" * 200}] for i in range(100)]
    assert len(message_text(message(text="a" * 4096, reply_markup={"inline_keyboard": buttons}))) == MAX_CHARS
