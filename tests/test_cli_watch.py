"""`compliance-bot watch add|remove|list|poll` against the fake t.me (and the fake Bot API) over HTTP."""

import sqlite3

import pytest
from click.testing import CliRunner

from bot.cli import CliApp, cli
from tests.conftest import MODERATOR_CHAT_ID, TEST_TOKEN, make_settings
from tests.fakes.classifier import FakeClassifier

PROMO = "Presale of $MOON is live, buy now"


@pytest.fixture
def watch_cli(tmp_path, web_preview):
    """Invoke `compliance-bot watch …` with the fake t.me as TELEGRAM_WEB_URL and a keyword classifier."""

    def invoke(*args, **settings):
        values = dict(telegram_web_url=web_preview.base_url, watch_min_delay_seconds=0.0) | settings
        app = CliApp(settings=make_settings(tmp_path, **values), classifier=FakeClassifier())
        return CliRunner().invoke(cli, ["watch", *args], obj=app)

    return invoke


def db_rows(tmp_path, sql):
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        return conn.execute(sql).fetchall()


def test_add_poll_list_remove(watch_cli, web_preview, tmp_path):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    channel.post(1, "Good morning")
    channel.post(2, PROMO)
    added = watch_cli("add", "https://t.me/s/MoonGems")
    assert added.exit_code == 0, added.output
    assert added.output.startswith("@MoonGems (Moon Gems) is watched")

    polled = watch_cli("poll", telegram_bot_token=None)
    assert polled.exit_code == 0, polled.output
    table = polled.output.splitlines()
    assert table[0].split() == ["channel", "pages", "posts", "new", "edited", "flags", "status"]
    assert table[2].split() == ["@MoonGems", "1", "2", "2", "0", "1", "ok"]
    assert "1 alerts wait in the outbox for the running bot." in polled.output  # no token: the bot sends them
    assert db_rows(tmp_path, "SELECT message_id, label FROM posts ORDER BY message_id") == [(1, "benign"), (2, "ico")]

    app = CliApp(settings=make_settings(tmp_path), classifier=FakeClassifier())
    exported = CliRunner().invoke(cli, ["export", "--format", "jsonl"], obj=app)
    assert '"link": "https://t.me/MoonGems/2"' in exported.output and '"chat_title": "Moon Gems"' in exported.output

    again = watch_cli("poll", telegram_bot_token=None)
    assert again.output.splitlines()[2].split() == ["@MoonGems", "1", "2", "0", "0", "0", "ok"]
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM post_versions") == [(2,)]

    listed = watch_cli("list")
    assert listed.exit_code == 0
    assert listed.output.split()[:5] == ["@MoonGems", "active", "last", "post", "2"]
    assert "2 posts" in " ".join(listed.output.split()) and "Moon Gems" in listed.output

    removed = watch_cli("remove", "@moongems")
    assert removed.exit_code == 0 and "is no longer watched" in removed.output
    assert "No channels are watched" in watch_cli("list").output


def test_names_that_cannot_be_watched_get_one_line_each_and_exit_1(watch_cli, web_preview):
    web_preview.channel("closedclub", "Closed Club", kind="private")
    web_preview.channel("MoonGems").post(1, "hello")
    result = watch_cli("add", "@closedclub", "nosuchchannel", "t.me/+invite", "MoonGems")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("@closedclub: has no public post list")
    assert lines[1] == "@nosuchchannel: no such channel on t.me"
    assert "private link" in lines[2] and lines[3].startswith("@MoonGems")


def test_poll_sends_alerts_through_the_outbox_to_the_moderators(watch_cli, web_preview, server, tmp_path):
    web_preview.channel("MoonGems", "Moon Gems").post(5, PROMO)
    watch_cli("add", "MoonGems")
    result = watch_cli("poll", telegram_api_url=server.base_url)
    assert result.exit_code == 0, result.output
    [alert] = [c for c in server.api.calls_to("sendMessage") if c.params["chat_id"] == MODERATOR_CHAT_ID]
    assert "https://t.me/MoonGems/5" in alert.params["text"]
    assert db_rows(tmp_path, "SELECT status FROM outbox") == [("sent",)]
    assert TEST_TOKEN not in result.output


def test_poll_backfill_and_a_channel_that_fails_exits_1(watch_cli, web_preview):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    for i in range(1, 61):
        channel.post(i, f"update {i}")
    broken = web_preview.channel("SunGems", "Sun Gems")
    broken.post(1, "hello")
    watch_cli("add", "MoonGems", "SunGems")
    broken.broken = True
    result = watch_cli("poll", "--backfill", "2", telegram_bot_token=None)
    assert result.exit_code == 1
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:]}
    assert rows["@MoonGems"][1:4] == ["3", "60", "60"]
    assert rows["@SunGems"][6] == "error:" and "data-post" in result.output


def test_list_and_poll_without_a_database_say_so(tmp_path):
    app = CliApp(settings=make_settings(tmp_path), classifier=FakeClassifier())
    for command in ("list", "poll"):
        result = CliRunner().invoke(cli, ["watch", command], obj=app)
        assert result.exit_code == 1 and result.output.startswith("Error: no database at ")
