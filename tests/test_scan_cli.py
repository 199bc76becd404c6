"""`compliance-bot scan`: Telegram Desktop exports and JSONL into the bot's database, bad input named and skipped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.exports import bot_api_chat_id, message_text
from tests.conftest import MODERATOR_CHAT_ID, TEST_TOKEN
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "telegram_export_channel.json"
SAMPLE_CHAT = -1001777000111


def env_for(tmp_path, model=None, **extra) -> dict:
    return {"DATABASE_PATH": str(tmp_path / "bot.db"), "MODEL_PATH": str(model or tmp_path / "model.joblib"),
            "TELEGRAM_BOT_TOKEN": None, "MODERATOR_CHAT_ID": None, "TELEGRAM_API_URL": None} | extra


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr("bot.cli._model", lambda settings, model_path=None: FakeClassifier())


def rows(tmp_path, sql, *params):
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        return conn.execute(sql, params).fetchall()


def message(mid, text, **extra):
    return {"id": mid, "type": "message", "date": "2024-05-01T10:00:00", "date_unixtime": str(1714557600 + mid),
            "text": text} | extra


def test_the_sample_export_scans_on_a_fresh_machine(tmp_path, model_path):
    result = CliRunner().invoke(cli, ["scan", str(SAMPLE)], env=env_for(tmp_path, model_path))
    assert result.exit_code == 0, result.output
    header, _, line = result.output.splitlines()[:3]
    assert line.split()[:7] == ["telegram_export_channel.json", "32", "30", "30", "0", "2", "0"]
    assert "Top chats by flags:" in result.output and "Most confident flags:" in result.output
    assert rows(tmp_path, "SELECT id, type, title FROM chats") == [(SAMPLE_CHAT, "channel", "Crypto Morning Brief")]
    labels = dict(rows(tmp_path, "SELECT message_id, label FROM posts"))
    assert len(labels) == 30
    assert labels[16] == "trading_service"  # Bybit sign-up link with a referral code
    assert labels[7] == "trading_service"  # 长期收U … OTC desk
    assert labels[4] == "benign" and labels[6] == "benign"  # news about exchanges being blocked, an SEC suit
    flags = rows(tmp_path, "SELECT COUNT(*) FROM flags")[0][0]
    assert 8 <= flags <= 16 and f"Flags: {flags}" in result.output
    # The URL behind a text link is part of what was scanned and stored.
    [(text,)] = rows(tmp_path, "SELECT text FROM posts WHERE message_id = 16")
    assert text.endswith("\nhttps://www.bybit.com/invite?ref=CMB2024")
    # History does not alert one by one: no alert is marked for immediate sending.
    assert rows(tmp_path, "SELECT COUNT(*) FROM alerts WHERE notify = 1") == [(0,)]


async def test_a_post_seen_live_and_in_an_export_is_one_row(bot_factory, tmp_path, fake_model):
    harness = await bot_factory()
    chat = {"id": SAMPLE_CHAT, "type": "channel", "title": "Crypto Morning Brief", "username": "cryptomorningbrief"}
    live_text = "Open a Bybit account with our link and get a $30,000 bonus pack 💰 Register — referral code CMB2024"
    entity = {"type": "text_link", "offset": live_text.index("Register") + 1, "length": 8,
              "url": "https://www.bybit.com/invite?ref=CMB2024"}
    await harness.send(U.channel_post(16, live_text, chat=chat, entities=[entity]))
    result = CliRunner().invoke(cli, ["scan", str(SAMPLE)], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2].split()[:5] == ["telegram_export_channel.json", "32", "30", "29", "1"]
    assert rows(tmp_path, "SELECT versions FROM posts WHERE message_id = 16") == [(1,)]
    # The export knows no username; the one seen live is kept, so links stay public links.
    assert rows(tmp_path, "SELECT username FROM chats") == [("cryptomorningbrief",)]


def test_an_account_export_with_odd_messages_is_read_and_every_problem_named(tmp_path, fake_model):
    export = {"about": "…", "chats": {"about": "…", "list": [
        {"name": "Gems", "type": "private_supergroup", "id": 1500000001, "messages": [
            message(1, ["Join the ", {"type": "bold", "text": "presale"}, " now at ",
                        {"type": "text_link", "text": "this site", "href": "https://gem-sale.example"}]),
            message(2, "VIP signals every day", forwarded_from="Pump Kings"),
            {"type": "message", "text": "no id here"},
            message(4, ["ok", 42]),
            "not a message",
            message(6, {"text": "a dict"}),
            {"id": 7, "type": "service", "action": "pin_message", "text": ""},
            message(8, "", photo="photos/1.jpg"),
        ]},
        {"name": "Old group", "type": "private_group", "id": 4000001, "messages": [message(1, "airdrop claim today")]},
        {"name": "Alice", "type": "personal_chat", "id": 77, "messages": [message(1, "hi, lunch?")]},
        {"name": "Strange", "type": "hologram", "id": 5, "messages": [message(1, "presale")]},
    ]}, "left_chats": {"about": "…", "list": [
        {"name": "Left channel", "type": "public_channel", "id": 1600000002, "messages": [message(3, "referral code X1")]},
    ]}}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    result = CliRunner().invoke(cli, ["scan", str(path)], env=env_for(tmp_path))
    assert result.exit_code == 1
    out = result.output
    assert "chat 'Gems' (id 1500000001) message #3: no numeric \"id\" (None); skipped" in out
    assert "message id 4: a part of \"text\" is a int, expected a string or an entity object; skipped" in out
    assert "message #5: a string, not a message object; skipped" in out
    assert "message id 6: \"text\" is a dict, expected a string or a list; skipped" in out
    assert "chat 'Strange' (id 5): unknown chat type 'hologram'" in out
    stored = rows(tmp_path, "SELECT chat_id, message_id, label FROM posts ORDER BY chat_id, message_id")
    assert stored == [(-1001600000002, 3, "trading_service"), (-1001500000001, 1, "ico"),
                      (-1001500000001, 2, "trading_service"), (-4000001, 1, "ico"), (77, 1, "benign")]
    [(text,)] = rows(tmp_path, "SELECT text FROM posts WHERE message_id = 1 AND chat_id = -1001500000001")
    assert text == "Join the presale now at this site\nhttps://gem-sale.example"
    [(text,)] = rows(tmp_path, "SELECT text FROM posts WHERE message_id = 2")
    assert text == "VIP signals every day\nPump Kings"
    assert "6 problems: see the messages above" in out  # five named, and the message of the unknown chat


def test_truncated_and_non_json_files_keep_what_was_read_and_the_next_file_is_scanned(tmp_path, fake_model):
    truncated = tmp_path / "truncated.json"
    data = SAMPLE.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    not_json = tmp_path / "notes.json"
    not_json.write_text("these are my notes, not JSON\n")
    not_export = tmp_path / "other.json"
    not_export.write_text('{"hello": [1, 2, 3]}')
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"text": "Presale live", "chat_id": -1009, "message_id": 1, "chat_title": "X", "date": 1700000000}\n'
                     '{"text": "broken\n'
                     '{"text": "no ids"}\n'
                     '[1, 2]\n'
                     '{"text": "just chat", "chat_id": -1009, "message_id": 2, "date": "2024-01-02T03:04:05"}\n',
                     encoding="utf-8")
    missing = tmp_path / "missing.json"
    result = CliRunner().invoke(cli, ["scan", str(truncated), str(not_json), str(not_export), str(missing), str(posts)],
                                env=env_for(tmp_path))
    assert result.exit_code == 1
    out = result.output
    assert "truncated.json: the JSON stops being valid after" in out and "the file is truncated or damaged" in out
    assert f"{not_json}: not a JSON file (lexical error" in out
    assert f"{not_export}: not a Telegram Desktop export" in out
    assert f"{missing}: cannot open (No such file or directory)" in out
    assert f"{posts}:2: not valid JSON" in out
    assert f'{posts}:3: missing "chat_id" (an integer)' in out
    assert f"{posts}:4: expected a JSON object, got list" in out
    read_before_the_cut = rows(tmp_path, "SELECT COUNT(*) FROM posts WHERE chat_id = ?", SAMPLE_CHAT)[0][0]
    assert 10 <= read_before_the_cut < 30  # everything before the damage is stored
    assert rows(tmp_path, "SELECT message_id, date FROM posts WHERE chat_id = -1009 ORDER BY message_id") == [
        (1, 1700000000.0), (2, 1704164645.0)]


def test_alert_sends_one_digest_of_the_scan(tmp_path, fake_model):
    from tests.fakes.bot_api import FakeBotApiServer

    server = FakeBotApiServer().start()
    try:
        env = env_for(tmp_path, TELEGRAM_BOT_TOKEN=TEST_TOKEN, TELEGRAM_API_URL=server.base_url,
                      MODERATOR_CHAT_ID=str(MODERATOR_CHAT_ID))
        result = CliRunner().invoke(cli, ["scan", "--alert", str(SAMPLE)], env=env)
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert "Digest of" in result.output and "sent to the moderators" in result.output
    [digest] = [c for c in server.api.calls_to("sendMessage") if c.params["chat_id"] == MODERATOR_CHAT_ID]
    text = digest.params["text"]
    assert "Scan digest" in text and "Crypto Morning Brief" in text and "Top flagged posts" in text
    assert rows(tmp_path, "SELECT kind, status FROM outbox") == [("digest", "sent")]


def test_alert_without_a_token_is_refused_before_scanning(tmp_path, fake_model):
    result = CliRunner().invoke(cli, ["scan", "--alert", str(SAMPLE)], env=env_for(tmp_path))
    assert result.exit_code == 1 and "--alert: TELEGRAM_BOT_TOKEN is not set" in result.output
    assert not (tmp_path / "bot.db").exists()


def test_chat_ids_become_bot_api_ids():
    assert bot_api_chat_id(1777000111, "public_channel") == -1001777000111
    assert bot_api_chat_id(1500000001, "private_supergroup") == -1001500000001
    assert bot_api_chat_id(4000001, "private_group") == -4000001
    assert bot_api_chat_id(77, "personal_chat") == 77
    assert bot_api_chat_id(-1001234, "public_channel") == -1001234  # already a Bot API id


def test_text_entities_and_buttons_are_read_like_the_live_bot():
    msg = {"text": [{"type": "text_link", "text": "here", "href": "https://a.example"}],
           "text_entities": [{"type": "text_link", "text": "here", "href": "https://a.example"}],
           "inline_bot_buttons": [[{"type": "url", "text": "Buy", "data": "https://buy.example"}]]}
    assert message_text(msg) == "here\nhttps://a.example\nBuy https://buy.example"
    assert message_text({"text": "", "photo": "x.jpg"}) is None


@pytest.mark.parametrize("command", ["scan", "export", "stats"])
def test_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output and len(result.output.splitlines()) > 5
