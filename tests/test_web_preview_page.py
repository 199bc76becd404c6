"""Reading t.me/s pages: hand-written pages in the structure Telegram serves (tests/fakes/web_preview_pages/)."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.web_preview_page import PageLayoutError, parse_page, profile_kind
from tests.fakes.web_preview import FakeChannel, render_page

PAGES = Path(__file__).parent / "fakes" / "web_preview_pages"


@pytest.fixture(scope="module")
def page():
    return parse_page((PAGES / "channel.html").read_bytes())


def by_id(page):
    return {p.message_id: p for p in page.posts}


def test_the_channel_header_the_bot_api_id_and_the_more_link(page):
    assert page.channel_info and page.username == "MoonGems" and page.title == "Moon Gems 🚀"
    # data-view's "c" is minus the channel's own id; the Bot API id puts -100 before it.
    assert page.chat_id == -1001987654321
    assert page.before == 101
    assert [p.message_id for p in page.posts] == list(range(101, 109))  # oldest first


def test_text_with_line_breaks_emoji_and_the_urls_behind_links(page):
    post = by_id(page)[102]
    visible, *hidden = post.text.split("\nhttps://")
    assert visible.splitlines() == [
        "$MOON presale is LIVE 🚀",
        "1 BNB = 50,000 MOON",
        "",
        "Buy here: moon-sale.example · whitelist: join",
        "Chat: @moonchat #presale",
        "Site: moon.example",
    ]
    # Links whose text hides their target add it; a link that shows its URL, a mention, a hashtag do not.
    assert hidden == ["moon-sale.example/?ref=gems", "moon-sale.example/whitelist"]
    assert post.date == 1763720130.0 and not post.edited and post.media == ()


def test_photo_and_video_captions_are_the_text(page):
    posts = by_id(page)
    assert posts[103].text == "Airdrop round 2: claim your tokens before Sunday" and posts[103].media == ("photo",)
    assert posts[104].text == "How we audited the contract (video)" and posts[104].media == ("video",)


def test_a_forwarded_post_names_its_origin_as_the_bot_api_source_does(page):
    post = by_id(page)[105]
    assert post.forwarded_from == "VIP Signals Pro @VipSignalsPro"
    assert post.text == "BTC/USDT long, entry 64,200, targets 65k / 66k\nVIP Signals Pro @VipSignalsPro"


def test_a_link_preview_adds_what_it_shows_but_not_a_url_the_text_shows(page):
    assert by_id(page)[106].text.splitlines() == [
        "Read this first: exchange.example/register?ref=XYZ",
        "Exchange Example",
        "Sign up and get a 100 USDT bonus",
        "No KYC, 125x leverage, works in every country.",
    ]


def test_no_text_service_messages_and_the_edited_mark(page):
    posts = by_id(page)
    assert posts[107].text is None and posts[107].media == ("photo",)
    assert posts[101].service and posts[101].text is None
    assert posts[108].edited and not posts[102].edited


def test_a_post_block_without_data_post_is_a_layout_change_and_rejects_the_page():
    channel = FakeChannel("gems", "Gems", broken=True)
    channel.post(1, "hello")
    with pytest.raises(PageLayoutError, match="data-post"):
        parse_page(render_page(channel))
    with pytest.raises(PageLayoutError):
        parse_page('<div class="tgme_widget_message" data-post="gems/abc"></div>')


def test_pages_that_are_not_a_channel():
    missing = parse_page((PAGES / "not_found.html").read_text())
    assert not missing.channel_info and missing.posts == []
    assert profile_kind((PAGES / "not_found.html").read_text()) == "missing"
    assert profile_kind((PAGES / "profile.html").read_text()) == "profile"
    assert profile_kind("<html><body>maintenance</body></html>") is None


def test_the_fake_server_pages_read_back_with_paging():
    channel = FakeChannel("gems", "Gems", channel_id=777)
    for i in range(1, 46):
        channel.post(i, f"post {i}\nline two", edited=i == 45)
    newest = parse_page(render_page(channel))
    assert [p.message_id for p in newest.posts] == list(range(26, 46)) and newest.before == 26
    assert newest.posts[-1].edited and newest.posts[0].text == "post 26\nline two"
    assert newest.chat_id == -1000000000777
    oldest = parse_page(render_page(channel, before=6))
    assert [p.message_id for p in oldest.posts] == list(range(1, 6)) and oldest.before is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    '<div class="tgme_widget_message" data-post="gems/12">',
                    '<div class="tgme_widget_message" data-post="gems/٣">',
                    '<div class="tgme_widget_message" data-post="ev<il/5">',
                    '<div class="tgme_widget_message_text">',
                    '<a href="https://x.example">',
                    '<time datetime="99999-01-01">',
                    '<div class="tgme_widget_message_meta">edited',
                    '<a class="tme_messages_more" data-before="-3">',
                    '<div class="tgme_widget_message" data-view="!!!">',
                    "<br>",
                    "</div>",
                ]
            ),
        ),
        max_size=30,
    )
)
def test_any_page_reads_or_is_refused_as_a_layout_change(parts):
    try:
        page = parse_page("".join(parts))
    except PageLayoutError:
        return
    for post in page.posts:
        assert post.channel.replace("_", "").isalnum() and 1 <= post.message_id <= 2**31 - 1
    assert page.before is None or page.before > 1
