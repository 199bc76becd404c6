"""End to end: the real `compliance-bot run` process reads a watched channel's page on the fake t.me and alerts
the moderators' chat on the fake Bot API, both over HTTP on 127.0.0.1."""

import time

import pytest
from click.testing import CliRunner

from bot.cli import CliApp, cli
from tests.conftest import make_settings
from tests.test_app_e2e import PROMO, alerts_sent, db_rows, wait_for

pytestmark = pytest.mark.slow


def test_a_promotion_post_on_a_watched_channel_alerts_the_moderators(server, run_bot, web_preview, tmp_path):
    channel = web_preview.channel("MoonGems", "Moon Gems")
    channel.post(1, "Good morning, markets are calm today.")
    settings = make_settings(tmp_path, telegram_web_url=web_preview.base_url, watch_min_delay_seconds=0.0)
    added = CliRunner().invoke(cli, ["watch", "add", "MoonGems"], obj=CliApp(settings=settings))
    assert added.exit_code == 0, added.output

    bot = run_bot(TELEGRAM_WEB_URL=web_preview.base_url, WATCH_INTERVAL_SECONDS="1", WATCH_MIN_DELAY_SECONDS="0.05")
    wait_for(lambda: db_rows(tmp_path, "SELECT message_id FROM posts"), 30, "the first round")
    assert alerts_sent(server) == []

    channel.post(2, PROMO)  # appears on the page between two rounds
    alert = wait_for(lambda: alerts_sent(server), 30, "the alert")[0]
    assert "https://t.me/MoonGems/2" in alert.params["text"] and "Moon Gems" in alert.params["text"]
    rounds = len(web_preview.requests_for("MoonGems"))
    wait_for(lambda: len(web_preview.requests_for("MoonGems")) >= rounds + 2, 30, "two more rounds")
    assert len(alerts_sent(server)) == 1  # later rounds store and alert nothing twice
    assert db_rows(tmp_path, "SELECT message_id, COUNT(*) FROM post_versions GROUP BY message_id") == [(1, 1), (2, 1)]
    starts = [r.at for r in web_preview.requests]
    assert web_preview.max_in_flight == 1 and all(b - a >= 0.04 for a, b in zip(starts, starts[1:]))
    time.sleep(0.5)
    assert "Traceback" not in bot.log()
