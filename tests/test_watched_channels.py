"""Watched public channels: names, adding and removing, polling rounds against the fake t.me over HTTP."""

import asyncio
import sqlite3

import pytest

from bot.digest import build_digest
from bot.post import Post
from bot.services import Services
from bot.storage import Storage
from bot.watched_channels import (
    MAX_CATCHUP_PAGES,
    RECHECK_SECONDS,
    add_channels,
    channel_name,
    poll_round,
    remove_channels,
    watched,
    watched_channel,
    web_chat_id,
)
from bot.web_preview_fetch import PoliteFetcher
from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes.classifier import FakeClassifier

PROMO = "Presale of $MOON is live, buy now"


class Clock:
    def __init__(self, now=1_764_600_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def svc(tmp_path, clock):
    storage = Storage.open(tmp_path / "bot.db", clock=clock)
    yield Services(storage, FakeClassifier(), MODERATOR_CHAT_ID, frozenset({111}))
    storage.close()


@pytest.fixture
def fetcher(web_preview):
    return PoliteFetcher(web_preview.base_url, min_delay=0.0, backoff=0.05)


async def add(svc, fetcher, *names):
    async with fetcher.session() as f:
        return await add_channels(svc.storage, f, list(names))


async def poll(svc, fetcher, **kwargs):
    async with fetcher.session() as f:
        return await poll_round(svc, f, **kwargs)


def rows(svc, sql, params=()):
    return [tuple(r.values()) for r in svc.storage.db.query(sql, params)]


@pytest.mark.parametrize(
    "text",
    ["@MoonGems", "MoonGems", "t.me/MoonGems", "https://t.me/s/MoonGems", "https://t.me/MoonGems/102", " @MoonGems "],
)
def test_every_way_of_naming_a_channel(text):
    assert channel_name(text) == "MoonGems"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("https://t.me/+AbCdEf123", "private link"),
        ("t.me/joinchat/AbCdEf", "private link"),
        ("https://t.me/c/1234567/89", "private link"),
        ("https://example.com/MoonGems", "not a t.me link"),
        ("@ab", "not a channel username"),
        ("moon gems", "not a channel username"),
        ("https://t.me/", "names no channel"),
    ],
)
def test_names_that_are_not_a_public_channel(text, reason):
    with pytest.raises(ValueError, match=reason):
        channel_name(text)


def test_web_chat_ids_are_stable_and_below_every_bot_api_id():
    assert web_chat_id("MoonGems") == web_chat_id("moongems") < -4_000_000_000_000
    assert web_chat_id("MoonGems") != web_chat_id("SunGems")


async def test_add_checks_each_channel_and_says_why_not(svc, fetcher, web_preview):
    web_preview.channel("MoonGems", "Moon Gems").post(1, "hello")
    web_preview.channel("closedclub", "Closed Club", kind="private")
    changes = await add(svc, fetcher, "t.me/moongems", "@closedclub", "@nosuchchannel", "t.me/+invite")
    assert [c.ok for c in changes] == [True, False, False, False]
    assert "@MoonGems (Moon Gems) is watched" in changes[0].message  # the page spells the name
    assert "has no public post list" in changes[1].message
    assert changes[2].message == "@nosuchchannel: no such channel on t.me"
    assert "private link" in changes[3].message
    assert [w["username"] for w in watched(svc.storage)] == ["MoonGems"]
    chat = svc.storage.chat(web_chat_id("MoonGems"))
    assert (chat["title"], chat["username"], chat["source"], chat["status"]) == (
        "Moon Gems",
        "MoonGems",
        "web_preview",
        "watched",
    )
    again = await add(svc, fetcher, "MoonGems")
    assert again[0].ok and "already watched" in again[0].message


async def test_add_reports_an_unreachable_t_me_in_one_line(svc):
    fetcher = PoliteFetcher("http://127.0.0.1:9", min_delay=0.0, backoff=0.01, attempts=2)
    [change] = await add(svc, fetcher, "MoonGems")
    assert not change.ok and change.message.startswith("@MoonGems: could not read http://127.0.0.1:9/s/MoonGems: ")
    assert "\n" not in change.message


async def test_poll_stores_and_flags_and_a_second_poll_stores_nothing_twice(svc, fetcher, web_preview):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    channel.post(1, "Channel created", service=True)
    channel.post(2, "Good morning, markets are calm")
    channel.post(3, PROMO)
    channel.post(4, photo=True)  # no text
    await add(svc, fetcher, "MoonGems")
    summary = await poll(svc, fetcher)
    [result] = summary.channels
    assert (result.status, result.pages, result.posts, result.new, result.flags) == ("ok", 1, 4, 2, 1)
    chat_id = web_chat_id("MoonGems")
    assert rows(svc, "SELECT message_id, label FROM posts WHERE chat_id = ? ORDER BY message_id", [chat_id]) == [
        (2, "benign"),
        (3, "ico"),
    ]
    [flag] = svc.storage.all_flags()
    assert flag["link"] == "https://t.me/MoonGems/3"
    assert len(svc.storage.unsent_alerts()) == 1  # the alert waits in the outbox, like a live post's
    calls = len(svc.classifier.calls)

    summary = await poll(svc, fetcher)
    assert (summary.channels[0].new, summary.channels[0].edited) == (0, 0)
    assert len(svc.classifier.calls) == calls  # unchanged posts are not even classified again
    assert rows(svc, "SELECT COUNT(*) FROM post_versions") == [(2,)]
    assert watched_channel(svc.storage, "moongems")["last_post_id"] == 4


async def test_an_edited_post_is_scanned_again(svc, fetcher, web_preview):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    channel.post(7, "Nice weather today")
    await add(svc, fetcher, "MoonGems")
    await poll(svc, fetcher)
    channel.post(7, PROMO, edited=True)
    summary = await poll(svc, fetcher)
    assert (summary.channels[0].new, summary.channels[0].edited, summary.channels[0].flags) == (0, 1, 1)
    versions = svc.storage.post_versions(web_chat_id("MoonGems"), 7)
    assert [v["label"] for v in versions] == ["benign", "ico"]


async def test_later_rounds_read_back_to_the_last_post_seen_and_no_further(svc, fetcher, web_preview):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    for i in range(1, 31):
        channel.post(i, f"update {i}")
    await add(svc, fetcher, "MoonGems")
    first = await poll(svc, fetcher)
    assert first.channels[0].pages == 1 and first.channels[0].new == 20  # the first round: the newest page
    for i in range(31, 76):
        channel.post(i, f"update {i}")
    before = len(web_preview.requests)
    second = await poll(svc, fetcher)
    assert second.channels[0].new == 45 and second.channels[0].pages == 3
    assert [r.query for r in web_preview.requests[before:]] == ["", "before=56", "before=36"]
    stored = {m for (m,) in rows(svc, "SELECT message_id FROM posts")}
    assert stored == set(range(11, 76))


async def test_catching_up_stops_after_a_few_pages(svc, fetcher, web_preview):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    channel.post(1, "first")
    await add(svc, fetcher, "MoonGems")
    await poll(svc, fetcher)
    for i in range(2, 400):
        channel.post(i, f"update {i}")
    summary = await poll(svc, fetcher)
    assert summary.channels[0].pages == 1 + MAX_CATCHUP_PAGES


async def test_backfill_walks_back_n_pages(svc, fetcher, web_preview):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    for i in range(1, 101):
        channel.post(i, f"update {i}")
    await add(svc, fetcher, "MoonGems")
    summary = await poll(svc, fetcher, backfill=2)
    assert summary.channels[0].pages == 3 and summary.channels[0].new == 60
    assert min(m for (m,) in rows(svc, "SELECT message_id FROM posts")) == 41


async def test_a_429_then_200_recovers_within_the_round(svc, fetcher, web_preview):
    web_preview.channel("MoonGems", "Moon Gems").post(3, PROMO)
    await add(svc, fetcher, "MoonGems")
    web_preview.fail("MoonGems", 429, retry_after=1)
    summary = await poll(svc, fetcher)
    assert summary.channels[0].status == "ok" and summary.channels[0].flags == 1
    assert [r.status for r in web_preview.requests_for("MoonGems")][-2:] == [429, 200]


async def test_a_channel_that_turns_private_is_marked_once_reported_once_and_left_alone(
    svc, fetcher, web_preview, clock
):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    channel.post(3, PROMO)
    web_preview.channel("SunGems", "Sun Gems").post(1, "hello")
    await add(svc, fetcher, "MoonGems", "SunGems")
    await poll(svc, fetcher)
    start = clock.now
    clock.now += 60
    channel.kind = "private"
    summary = await poll(svc, fetcher)
    assert {c.username: c.status for c in summary.channels} == {"MoonGems": "private", "SunGems": "ok"}
    assert summary.errors == 1
    text, _ = build_digest(svc.storage, start, clock.now)
    assert "Watched channels no longer readable" in text and "@MoonGems: has no public post list" in text

    clock.now += 60
    asked = len(web_preview.requests_for("MoonGems"))
    summary = await poll(svc, fetcher)
    assert [c.username for c in summary.channels] == ["SunGems"]  # not retried every round
    assert len(web_preview.requests_for("MoonGems")) == asked
    assert build_digest(svc.storage, start + 60, clock.now) is None  # reported once

    clock.now += RECHECK_SECONDS
    channel.kind = "public"
    summary = await poll(svc, fetcher)
    assert {c.username: c.status for c in summary.channels}["MoonGems"] == "ok"
    assert watched_channel(svc.storage, "MoonGems")["status"] == "active"


async def test_a_page_that_does_not_read_is_logged_and_kept_out(svc, fetcher, web_preview, caplog):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    channel.post(3, PROMO)
    web_preview.channel("SunGems", "Sun Gems").post(1, PROMO)
    await add(svc, fetcher, "MoonGems", "SunGems")
    channel.broken = True
    summary = await poll(svc, fetcher)
    assert {c.username: c.status for c in summary.channels} == {"MoonGems": "error", "SunGems": "ok"}
    assert "@MoonGems: page did not read (layout changed?)" in caplog.text
    assert rows(svc, "SELECT DISTINCT chat_id FROM posts") == [(web_chat_id("SunGems"),)]
    assert "data-post" in watched_channel(svc.storage, "MoonGems")["last_error"]


async def test_the_page_s_channel_id_keys_the_chat_by_its_bot_api_id(svc, fetcher, web_preview):
    web_preview.channel("MoonGems", "Moon Gems", channel_id=1987654321).post(3, PROMO)
    await add(svc, fetcher, "MoonGems")
    await poll(svc, fetcher)
    assert rows(svc, "SELECT chat_id FROM posts") == [(-1001987654321,)]
    # The same post arriving through the Bot API (the bot made an admin later) is the same row.
    svc.store_scan(
        Post(-1001987654321, 3, PROMO, chat_type="channel", chat_username="MoonGems"), svc.classifier.predict(PROMO)
    )
    assert rows(svc, "SELECT COUNT(*) FROM posts") == [(1,)] and rows(svc, "SELECT COUNT(*) FROM flags") == [(1,)]


async def test_a_web_channel_moves_to_its_bot_api_id_when_the_bot_api_shows_it(svc, fetcher, web_preview):
    web_preview.channel("MoonGems", "Moon Gems").post(3, PROMO)
    await add(svc, fetcher, "MoonGems")
    await poll(svc, fetcher)
    synthetic = web_chat_id("MoonGems")
    assert rows(svc, "SELECT chat_id FROM flags") == [(synthetic,)]
    real = -1001987654321
    # A live post of the same channel: the web channel's posts, flags and watch move to the real id.
    svc.store_scan(
        Post(real, 4, "Good morning", chat_type="channel", chat_title="Moon Gems", chat_username="moongems"),
        svc.classifier.predict("Good morning"),
    )
    assert rows(svc, "SELECT DISTINCT chat_id FROM posts") == [(real,)]
    assert rows(svc, "SELECT chat_id FROM flags") == [(real,)]
    assert watched_channel(svc.storage, "MoonGems")["chat_id"] == real
    assert svc.storage.chat(synthetic) is None
    chat = svc.storage.chat(real)
    assert (chat["source"], chat["status"]) == ("bot_api+web_preview", "watched")
    # The web source then stores the same post once.
    summary = await poll(svc, fetcher)
    assert summary.channels[0].new == 0 and rows(svc, "SELECT COUNT(*) FROM posts") == [(2,)]


async def test_adding_a_channel_the_bot_api_knows_uses_its_id(svc, fetcher, web_preview):
    svc.storage.upsert_chat(-1001987654321, "channel", "Moon Gems", "MoonGems", "watched")
    web_preview.channel("MoonGems", "Moon Gems").post(3, PROMO)
    await add(svc, fetcher, "@moongems")
    assert watched_channel(svc.storage, "MoonGems")["chat_id"] == -1001987654321
    assert svc.storage.chat(-1001987654321)["source"] == "bot_api+web_preview"


async def test_remove_keeps_the_flags(svc, fetcher, web_preview):
    web_preview.channel("MoonGems", "Moon Gems").post(3, PROMO)
    await add(svc, fetcher, "MoonGems")
    await poll(svc, fetcher)
    changes = remove_channels(svc.storage, ["https://t.me/s/MoonGems", "@SunGems"])
    assert [c.ok for c in changes] == [True, False] and changes[1].message == "@SunGems is not watched"
    assert watched(svc.storage) == [] and len(svc.storage.all_flags()) == 1
    assert svc.storage.chat(web_chat_id("MoonGems"))["status"] == "left"
    assert (await poll(svc, fetcher)).channels == []


async def test_a_database_error_while_storing_loses_nothing(svc, fetcher, web_preview, monkeypatch):
    web_preview.channel("MoonGems", "Moon Gems").post(3, PROMO)
    await add(svc, fetcher, "MoonGems")

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(svc.storage, "record_scan", locked)
    summary = await poll(svc, fetcher)
    assert summary.unsaved == 1 and summary.errors >= 1  # kept in memory, stored on the next write
    monkeypatch.undo()
    await poll(svc, fetcher)
    assert rows(svc, "SELECT message_id FROM posts") == [(3,)]


def test_an_existing_database_upgrades_to_web_channels(tmp_path):
    import sqlite_utils

    from bot.storage import migrations

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m005_web_preview")  # a database of the previous release
    old = Storage(db)
    old.upsert_chat(-1001111111111, "channel", "Crypto Gems", "cryptogems", "watched")
    old.close()
    storage = Storage.open(path)
    assert "m005_web_preview" in [m.name for m in migrations.applied(storage.db)]
    chat = storage.chat(-1001111111111)
    assert (chat["title"], chat["status"], chat["source"]) == ("Crypto Gems", "watched", "bot_api")
    assert watched(storage) == []
    storage.close()


async def test_a_t_me_that_fails_channel_after_channel_stops_the_round(svc, web_preview):
    names = [f"channel{i}" for i in range(6)]
    for name in names:
        web_preview.channel(name).post(1, "hello")
    fetcher = PoliteFetcher(web_preview.base_url, min_delay=0.0, backoff=0.01, attempts=2)
    await add(svc, fetcher, *names)
    for name in names[:3]:  # t.me down for the first three channels' two attempts each
        web_preview.fail(name, 503, times=2)
    summary = await poll(svc, fetcher)
    assert [c.status for c in summary.channels] == ["error"] * 3 + ["skipped"] * 3
    assert "round stopped" in summary.channels[-1].problem
    assert len(web_preview.requests) == 6 + 3 * 2  # six checks when added, then two attempts for three channels
    summary = await poll(svc, fetcher)  # t.me is back: the next round reads them all
    assert [c.status for c in summary.channels] == ["ok"] * 6


def test_a_long_bad_name_is_quoted_short():
    with pytest.raises(ValueError) as caught:
        channel_name("x" * 10_000 + " !")
    assert len(str(caught.value)) < 120


async def test_a_round_cancelled_mid_way_stops_and_the_next_one_reads_everything(svc, fetcher, web_preview):
    names = [f"channel{i}" for i in range(8)]
    for name in names:
        web_preview.channel(name).post(1, PROMO)
    await add(svc, fetcher, *names)
    web_preview.latency = 0.1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(poll(svc, fetcher), 0.35)  # a stop of the bot in the middle of a round
    web_preview.latency = 0.0
    summary = await poll(svc, fetcher)
    assert [c.status for c in summary.channels] == ["ok"] * 8
    assert rows(svc, "SELECT COUNT(*) FROM posts") == [(8,)] and rows(svc, "SELECT COUNT(*) FROM flags") == [(8,)]
