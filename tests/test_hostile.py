"""Hostile input: forged buttons, strangers, unknown chats, oversized and malformed updates and exports,
SQL- and markup-like text, and the token kept out of every log, error and export."""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from bot.alerts import encode_callback
from bot.cli import CliApp, cli
from bot.commands import MODERATOR_COMMANDS
from classifier import MAX_CHARS
from tests.conftest import MODERATOR_CHAT_ID, TEST_TOKEN
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}
UNKNOWN_GROUP = {"id": -1002222222222, "type": "supergroup", "title": "Never seen"}
UNKNOWN_BASIC_GROUP = {"id": -4242, "type": "group", "title": "Basic"}
MODERATOR_COMMAND_NAMES = [c.command for c in MODERATOR_COMMANDS]
SQL = "'); DROP TABLE flags;--"


def db_state(storage) -> dict:
    """Every row of every table: what "nothing changed" is compared against."""
    return {name: storage.db.execute(f"SELECT * FROM [{name}]").fetchall() for name in storage.db.table_names()}


async def two_alerts(harness):
    """Two flagged posts, alerted; the message of the first and its buttons by text."""
    await harness.send(U.channel_post(10, "Presale of $MOON ends Friday"))
    await harness.send(U.channel_post(11, "Airdrop of $SUN: drop your wallet"))
    await harness.flush()
    calls = harness.api.calls_to("sendMessage")
    first = calls[0]
    message = next(m for m in harness.api.messages.values() if m["text"] == first.params["text"])
    buttons = {b["text"]: b["callback_data"] for b in first.params["reply_markup"]["inline_keyboard"][0]}
    return message, buttons


def answers(harness) -> list[str]:
    return [c.params["text"] for c in harness.api.calls_to("answerCallbackQuery")]


# -- forged callback data -------------------------------------------------------------------------------


def forgeries(confirm: str, secret: bytes) -> dict[str, str]:
    alert_id = int(confirm.split(":")[1])
    signature = confirm.rsplit(":", 1)[1]
    return {
        "bad signature": confirm[:-4] + ("0000" if not confirm.endswith("0000") else "1111"),
        "other alert's id, this alert's signature": f"rv:{alert_id + 1}:c:{signature}",
        "other action, this action's signature": confirm.replace(":c:", ":f:"),
        "signed for an alert that does not exist": encode_callback(secret, 999, "c"),
        "signed with another key": encode_callback(b"not the key", alert_id, "c"),
        "truncated": confirm[: len(confirm) // 2],
        "signature cut": confirm[:-1],
        "no signature": f"rv:{alert_id}:c",
        "oversized": confirm + "0" * 100,
        "huge": "rv:1:c:" + "a" * 10_000,
        "negative id": f"rv:-{alert_id}:c:{signature}",
        "unknown action": f"rv:{alert_id}:x:{signature}",
        "extra field": confirm + ":extra",
        "not ours": "garbage",
        "unicode digits": f"rv:{'١'}:c:{signature}",
        "null byte": confirm[:5] + "\x00" + confirm[6:],
        "empty": "",
    }


async def test_forged_callback_data_is_refused_changes_nothing_and_is_logged(harness, caplog):
    message, buttons = await two_alerts(harness)
    before = db_state(harness.storage)
    forged = forgeries(buttons["✅ Confirm"], harness.services.secret)
    caplog.set_level(logging.WARNING, logger="bot")
    for name, data in forged.items():
        await harness.send(U.callback(data, U.MODERATOR, message, query_id=name))
    assert db_state(harness.storage) == before
    assert answers(harness) == ["This button is not valid."] * len(forged)
    assert harness.api.calls_to("editMessageText") == []
    refusals = [r for r in caplog.records if "refused malformed or forged callback data" in r.getMessage()]
    assert len(refusals) == len(forged)
    assert all(len(r.getMessage()) < 200 for r in refusals)  # 10 KB of data is not copied into the log


async def test_a_callback_without_data_is_refused(harness, caplog):
    message, _ = await two_alerts(harness)
    before = db_state(harness.storage)
    update = U.callback("x", U.MODERATOR, message)
    del update["callback_query"]["data"]
    await harness.send(update)
    assert db_state(harness.storage) == before and answers(harness) == ["This button is not valid."]
    assert "refused malformed or forged callback data ''" in caplog.text


async def test_a_press_delivered_again_changes_nothing(harness, caplog):
    """The same update (same update id and callback query id) delivered again, as Telegram does when the
    bot did not confirm it, or the same query id under another genuine button of the alert: the first press
    is the review, the rest change nothing and are answered."""
    caplog.set_level(logging.INFO, logger="bot.review")
    message, buttons = await two_alerts(harness)
    press = U.callback(buttons["✅ Confirm"], U.MODERATOR, message, query_id="5918273645") | {"update_id": 424242}
    await harness.send(press)
    after_first = db_state(harness.storage)
    for _ in range(3):
        await harness.send(press)
    for data in buttons.values():
        await harness.send(U.callback(data, U.MODERATOR, message, query_id="5918273645") | {"update_id": 424243})
    assert db_state(harness.storage) == after_first
    [review] = harness.storage.reviews()
    assert (review["decision"], review["callback_query_id"]) == ("confirm", "5918273645")
    assert answers(harness) == ["✅ Confirmed: recorded."] * (4 + len(buttons))  # what was recorded, every time
    assert caplog.text.count("callback query 5918273645 was delivered again") == 3 + len(buttons)


# -- strangers ------------------------------------------------------------------------------------------


async def test_a_non_moderator_pressing_each_button_is_refused_and_logged(harness, caplog):
    message, buttons = await two_alerts(harness)
    before = db_state(harness.storage)
    for text, data in buttons.items():
        await harness.send(U.callback(data, U.STRANGER, message, query_id=text))
    assert db_state(harness.storage) == before
    assert answers(harness) == ["Only moderators can review flags."] * len(buttons)
    assert harness.api.calls_to("editMessageText") == []
    assert caplog.text.count("refused review of alert 1 by non-moderator 666") == len(buttons)


@pytest.mark.parametrize("where", ["private", "moderators' chat", "watched group", "unknown group"])
async def test_a_non_moderator_sending_each_moderator_command_is_refused_and_logged(bot_factory, caplog, where):
    loads = []
    harness = await bot_factory(loader=lambda: loads.append(1) or FakeClassifier(version="stranger's"))
    await harness.send(U.channel_post(1, "Presale live"))
    before = db_state(harness.storage)
    caplog.set_level(logging.INFO)
    chat = {"moderators' chat": MODS, "watched group": U.GROUP, "unknown group": UNKNOWN_GROUP}.get(where)
    for name in MODERATOR_COMMAND_NAMES:
        update = (
            U.private_message(1, f"/{name}", user=U.STRANGER)
            if chat is None
            else U.command(f"/{name} 30", chat, user=U.STRANGER)
        )
        await harness.send(update)
        assert (
            harness.api.calls_to("sendMessage")[-1].params["text"] == "Sorry, that command is for the moderators only."
        )
        assert f"refused /{name} by non-moderator 666" in caplog.text
    assert db_state(harness.storage) == before
    assert (
        harness.api.calls_to("sendDocument") == [] and loads == [] and harness.services.classifier.version == "fake-1"
    )
    replies = harness.api.calls_to("sendMessage")
    assert len(replies) == len(MODERATOR_COMMAND_NAMES)  # nothing but the refusals


@pytest.mark.parametrize("chat", [UNKNOWN_GROUP, UNKNOWN_BASIC_GROUP], ids=["supergroup", "basic group"])
async def test_a_moderator_command_from_an_unknown_chat_is_refused_and_logged(bot_factory, caplog, chat):
    loads = []
    harness = await bot_factory(loader=lambda: loads.append(1) or FakeClassifier(version="other"))
    await harness.send(U.channel_post(1, "Presale live"))
    before = db_state(harness.storage)
    for name in MODERATOR_COMMAND_NAMES:
        await harness.send(U.command(f"/{name}", chat, user=U.MODERATOR))
        assert harness.api.calls_to("sendMessage")[-1].params["text"] == (
            "Moderator commands work only in the moderators' chat or in private."
        )
        assert f"refused /{name} by moderator 111 in chat {chat['id']}" in caplog.text
    assert db_state(harness.storage) == before  # the unknown chat is not even recorded
    assert harness.api.calls_to("sendDocument") == [] and loads == []
    assert "Presale" not in "".join(c.params["text"] for c in harness.api.calls_to("sendMessage"))


async def test_a_moderators_command_addressed_to_another_bot_is_not_ours(harness):
    await harness.send(U.command("/export@some_other_bot", MODS))
    assert harness.api.calls_to("sendDocument") == [] and harness.api.calls_to("sendMessage") == []


# -- oversized and malformed updates ---------------------------------------------------------------------


async def test_a_100_kb_post_is_scanned_capped_and_alerted_within_telegram_limits(harness):
    text = "Presale now! " + "x" * 100_000
    await harness.send(U.channel_post(1, text))
    post = harness.storage.post(U.CHANNEL["id"], 1)
    assert post["label"] == "ico" and len(harness.classifier.calls[0]) == MAX_CHARS
    await harness.flush()
    [alert] = harness.api.calls_to("sendMessage", ok_only=False)
    assert alert.status == 200 and len(alert.params["text"]) <= 4096


async def test_many_overlapping_entities_and_buttons_are_bounded(harness):
    text = "Presale " + "y" * 300
    entities = [{"type": "bold", "offset": 0, "length": len(text) - i} for i in range(2000)] + [
        {"type": "text_link", "offset": i % 300, "length": 3, "url": f"https://e{i}.example/r?ref=X{i}"}
        for i in range(2000)
    ]
    keyboard = [[{"text": f"b{i}", "url": f"https://b{i}.example"} for i in range(8)] for _ in range(100)]
    await harness.send(U.channel_post(1, text, entities=entities, reply_markup={"inline_keyboard": keyboard}))
    scanned = harness.classifier.calls[0]
    assert scanned.startswith(text) and "https://e0.example/r?ref=X0" in scanned and len(scanned) == MAX_CHARS
    await harness.flush()
    [alert] = harness.api.calls_to("sendMessage", ok_only=False)
    assert alert.status == 200


async def test_a_deeply_nested_reply_chain_is_read(harness):
    message = {"message_id": 1, "date": 1, "chat": U.GROUP, "text": "Presale deep inside"}
    for i in range(2, 60):
        message = {"message_id": i, "date": 1, "chat": U.GROUP, "text": f"reply {i}", "reply_to_message": message}
    await harness.send(U.command("/check", U.GROUP, user=U.STRANGER, reply_to_message=message))
    assert "Benign" in harness.api.calls_to("sendMessage")[-1].params["text"]  # only the replied-to text is read


async def test_entities_beyond_the_text_do_not_break_the_scan(harness, caplog):
    entities = [
        {"type": "text_link", "offset": 10_000, "length": 50, "url": "https://presale.example/join"},
        {"type": "bold", "offset": -5, "length": 3},
        {"type": "url", "offset": 3, "length": 10_000},
        {"type": "mention", "offset": 0, "length": 0},
    ]
    await harness.send(U.channel_post(1, "Join now", entities=entities))
    post = harness.storage.post(U.CHANNEL["id"], 1)
    assert post["label"] == "ico"  # the hidden URL was read
    assert "error while handling" not in caplog.text


async def test_lone_surrogates_and_null_bytes_are_stored_and_alerted(harness, caplog):
    chat = U.PRIVATE_CHANNEL | {"title": "Gems \udfff\x00 chat"}
    await harness.send(U.channel_post(1, "Presale \ud800 live\x00 now", chat=chat))
    assert "error while handling" not in caplog.text
    post = harness.storage.post(chat["id"], 1)
    assert post is not None and post["label"] == "ico"
    [version] = harness.storage.post_versions(chat["id"], 1)
    assert version["text"] == "Presale \ufffd live\x00 now"
    assert harness.storage.chat(chat["id"])["title"] == "Gems \ufffd\x00 chat"
    await harness.flush()
    [alert] = harness.api.calls_to("sendMessage")
    alert.params["text"].encode("utf-8")  # sendable: no lone surrogate
    assert "\ufffd" in alert.params["text"]


async def test_a_moderator_with_a_broken_name_reviews(harness):
    message, buttons = await two_alerts(harness)
    moderator = U.MODERATOR | {"first_name": "Mia \ud800", "last_name": "<b>Mod</b>"}
    await harness.send(U.callback(buttons["✅ Confirm"], moderator, message))
    [review] = harness.storage.reviews()
    assert review["reviewer_name"] == "Mia \ufffd <b>Mod</b>"
    [edit] = harness.api.calls_to("editMessageText")
    assert "<code>Mia \ufffd &lt;b&gt;Mod&lt;/b&gt;</code>" in edit.params["text"]


async def test_a_chat_with_a_broken_title_adds_the_bot(harness, caplog):
    chat = {"id": -1003333333333, "type": "supergroup", "title": "New \udc00 <a href='x'>group</a>"}
    await harness.send(U.my_chat_member(chat, "left", "member"))
    assert "error while handling" not in caplog.text
    assert harness.storage.chat(chat["id"])["status"] == "watched"


# -- malformed exports for `compliance-bot scan` ---------------------------------------------------------


def scan_env(tmp_path) -> dict:
    return {
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "MODEL_PATH": str(tmp_path / "model.joblib"),
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "MODERATOR_CHAT_ID": None,
        "TELEGRAM_API_URL": None,
    }


@pytest.fixture
def fake_model():
    """A CliApp for one invocation, with the keyword classifier instead of the trained model."""
    return lambda: CliApp(classifier=FakeClassifier())


def good_message(mid: int, text) -> dict:
    return {
        "id": mid,
        "type": "message",
        "date": "2024-05-01T10:00:00",
        "date_unixtime": str(1714557600 + mid),
        "text": text,
    }


MALFORMED_EXPORTS = {
    "empty.json": b"",
    "binary.json": bytes(range(256)) * 40,
    "nested.json": b"[" * 200_000,
    "truncated.json": json.dumps(
        {
            "name": "C",
            "type": "public_channel",
            "id": 5,
            "messages": [good_message(1, "Presale one"), good_message(2, "Presale two")],
        }
    ).encode()[:-30],
    "number.json": b"42",
    "wrong_types.json": json.dumps({"name": ["x"], "type": 7, "id": "abc", "messages": {"a": 1}}).encode(),
    "bad_parts.json": json.dumps(
        {
            "name": "C",
            "type": "public_channel",
            "id": 6,
            "messages": [
                good_message(1, [{"type": "bold"}, 5, None]),
                good_message(2, {"text": "dict"}),
                "not a message",
                good_message(3, "Presale " + "z" * 1_000_000),
                good_message(4, "Presale \\ud800 and \x00"),
                {"id": "x", "type": "message", "text": "no date"},
                good_message(5, "Presale fine"),
            ],
        }
    )
    .encode()
    .replace(b"\\\\ud800", b"\\ud800"),
    "lines.jsonl": b"\n".join(
        [
            b'{"text": "Presale", "chat_id": 1, "message_id": "one"}',
            b"\xff\xfe\x00garbage",
            json.dumps({"text": "Presale " + "q" * 200_000, "chat_id": -7, "message_id": 1}).encode(),
            b'{"text": "Presale \\udc00 \\u0000", "chat_id": -7, "message_id": 2}',
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            b'{"text": null, "chat_id": -7, "message_id": 3}',
            b"[" * 100_000,
        ]
    ),
}


def test_malformed_exports_are_reported_and_skipped_without_a_traceback(tmp_path, fake_model):
    paths = []
    for name, content in MALFORMED_EXPORTS.items():
        path = tmp_path / name
        path.write_bytes(content)
        paths.append(str(path))
    result = CliRunner().invoke(cli, obj=fake_model(), args=["scan", *paths], env=scan_env(tmp_path))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # reported, not crashed
    assert "Traceback" not in result.output and TEST_TOKEN not in result.output
    out = result.output
    assert "empty.json: not a JSON file" in out and "binary.json: not a JSON file" in out
    assert "nested.json: nested deeper than 64 levels" in out  # not gigabytes of memory, as it once took
    assert "truncated.json: the JSON stops being valid after 1 messages" in out
    assert (
        "number.json: not a Telegram Desktop export" in out and "wrong_types.json: not a Telegram Desktop export" in out
    )
    assert "lines.jsonl:7: JSON nested too deeply to be a post; skipped" in out
    assert "lines.jsonl:2: not valid JSON" in out and "bad_parts.json: chat 'C' (id 6) message #3: a string" in out
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        texts = dict(conn.execute("SELECT message_id || '@' || chat_id, text FROM post_versions").fetchall())
    # What could be read was stored, capped, with no lone surrogate.
    assert all(len(t) <= MAX_CHARS for t in texts.values())
    assert texts.get(f"5@{-(10**12 + 6)}") == "Presale fine"
    assert texts.get("2@-7") == "Presale \ufffd \x00"
    assert len(texts.get("1@-7", "")) == MAX_CHARS


# -- issue 16: dates, ids, invalid UTF-8, nesting and byte-order marks at every entry point ------------------


def scan(tmp_path, fake_model, *paths):
    return CliRunner().invoke(cli, obj=fake_model(), args=["scan", *map(str, paths)], env=scan_env(tmp_path))


def export_file(path, chat_id, messages, name="C"):
    path.write_text(
        json.dumps({"name": name, "type": "public_channel", "id": chat_id, "messages": messages}), encoding="utf-8"
    )
    return path


def test_dates_that_cannot_be_stored_are_refused_at_ingest_and_every_flag_exports(tmp_path, fake_model):
    bad = ["1e999", "253402300800", "-99999999999999"]
    export = export_file(
        tmp_path / "dates.json",
        5,
        [good_message(n, f"Presale {n}") | {"date_unixtime": d} for n, d in enumerate(bad, 1)]
        + [good_message(9, "Presale ok")],
    )
    posts = tmp_path / "dates.jsonl"
    posts.write_text(json.dumps({"text": "Presale j", "chat_id": -7, "message_id": 1, "date": 1e300}) + "\n")
    result = scan(tmp_path, fake_model, export, posts)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    for n, d in enumerate(bad, 1):
        assert f"message id {n}: \"date_unixtime\" '{d}' is outside the dates that can be stored" in result.output
    assert 'dates.jsonl:1: "date" 1e+300 is outside the dates that can be stored' in result.output
    assert result.output.count("stored with its date unknown") == 4
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        dates = dict(conn.execute("SELECT message_id || '@' || chat_id, date FROM posts").fetchall())
    assert dates == {f"{n}@{-(10**12 + 5)}": None for n in (1, 2, 3)} | {
        f"9@{-(10**12 + 5)}": 1714557609.0,
        "1@-7": None,
    }
    for fmt in ("csv", "jsonl"):
        exported = CliRunner().invoke(cli, ["export", "--format", fmt], env=scan_env(tmp_path))
        assert exported.exit_code == 0, exported.output
        assert "5 flags exported" in exported.output and "Presale j" in exported.output


def test_ids_beyond_telegrams_ranges_are_named_and_the_files_after_them_read(tmp_path, fake_model):
    huge_chat = export_file(tmp_path / "huge_chat.json", 9223372036854775000, [good_message(1, "Presale huge")])
    huge_message = export_file(
        tmp_path / "huge_message.json",
        6,
        [good_message(9223372036854775000, "Presale huge"), good_message(2, "Presale after")],
    )
    past_64_bits = tmp_path / "past_64_bits.json"
    past_64_bits.write_text('{"name": "C", "type": "public_channel", "id": 9223372036854775808, "messages": []}')
    lines = tmp_path / "ids.jsonl"
    lines.write_text(
        "".join(
            json.dumps({"text": "Presale", "chat_id": c, "message_id": m}) + "\n"
            for c, m in [(2**63 - 1, 1), (-7, 2**63), (-7, 0), (-7, 3)]
        )
    )
    fine = export_file(tmp_path / "fine.json", 8, [good_message(1, "Presale fine")])
    result = scan(tmp_path, fake_model, huge_chat, huge_message, past_64_bits, lines, fine)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    out = result.output
    assert "Traceback" not in out and "OverflowError" not in out
    assert (
        "huge_chat.json: chat 'C' (id 9223372036854775000): the id is outside Telegram's channel ids "
        "(1 to 3000000000000); its messages are skipped" in out
    )
    assert (
        "huge_message.json: chat 'C' (id 6) message #1: message id 9223372036854775000 is outside Telegram's "
        "message ids (1 to 2147483647); skipped" in out
    )
    assert "past_64_bits.json: the JSON stops being valid" in out and "integer overflow" in out
    assert 'ids.jsonl:1: "chat_id" 9223372036854775807 is outside' in out and 'ids.jsonl:2: "message_id"' in out
    assert 'ids.jsonl:3: "message_id" 0 is outside' in out
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        stored = sorted(conn.execute("SELECT chat_id, message_id FROM posts").fetchall())
    assert stored == [(-(10**12 + 8), 1), (-(10**12 + 6), 2), (-7, 3)]


def test_raw_surrogate_bytes_in_an_export_are_named_and_the_rest_of_the_file_read(tmp_path, fake_model):
    path = tmp_path / "surrogates.json"
    data = json.dumps(
        {
            "name": "C",
            "type": "public_channel",
            "id": 5,
            "messages": [
                good_message(1, "Presale SURROGATE"),
                good_message(2, "Presale after"),
                good_message(3, "Presale \\udc00 escaped"),
            ],
        }
    ).encode()
    path.write_bytes(data.replace(b"SURROGATE", b"\xed\xa0\x80").replace(b"\\\\udc00", b"\\udc00"))
    lines = tmp_path / "surrogates.jsonl"
    lines.write_bytes(b'{"text": "Presale \xed\xa0\x80", "chat_id": -7, "message_id": 1, "chat_title": "T \\udc00"}\n')
    result = scan(tmp_path, fake_model, path, lines)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "UnicodeDecodeError" not in result.output and "Traceback" not in result.output
    assert (
        f"surrogates.json: invalid UTF-8 (1 sequence, the first at byte {data.index(b'SURROGATE')}: ED A0 80), "
        "replaced by U+FFFD; the file is read on" in result.output
    )
    assert "surrogates.jsonl:1: invalid UTF-8 at byte 18 of the line (ED A0 80)" in result.output
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        texts = dict(conn.execute("SELECT message_id || '@' || chat_id, text FROM post_versions").fetchall())
        [(title,)] = conn.execute("SELECT title FROM chats WHERE id = -7").fetchall()
    chat = -(10**12 + 5)
    assert texts == {
        f"1@{chat}": "Presale \ufffd\ufffd\ufffd",
        f"2@{chat}": "Presale after",
        f"3@{chat}": "Presale \ufffd escaped",
        "1@-7": "Presale \ufffd\ufffd\ufffd",
    }
    assert title == "T \ufffd"


class ReasonsClassifier(FakeClassifier):
    """The fake classifier, taking classify's ``reasons`` argument."""

    def predict_many(self, texts, reasons=5):
        return super().predict_many(texts)


def classify(tmp_path, data: bytes):
    source = tmp_path / "posts.jsonl"
    source.write_bytes(data)
    result = CliRunner().invoke(
        cli, obj=CliApp(classifier=ReasonsClassifier()), args=["classify", str(source)], env=scan_env(tmp_path)
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return result, rows


def test_classify_names_a_line_nested_100000_deep_and_classifies_the_lines_around_it(tmp_path):
    result, rows = classify(tmp_path, b'{"text": "Presale one"}\n' + b"[" * 100_000 + b'\n{"text": "two"}\n')
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert [(r["text"], r["label"]) for r in rows] == [("Presale one", "ico"), ("two", "benign")]
    assert "posts.jsonl: line 2: JSON nested deeper than 64 levels: not a post; skipped" in result.stderr
    assert "2 posts classified, 1 flagged, 1 skipped" in result.stderr


def test_a_byte_order_mark_is_accepted_by_every_file_reader(tmp_path, fake_model):
    bom = b"\xef\xbb\xbf"
    # classify: JSONL stays JSONL, its fields kept
    result, rows = classify(tmp_path, bom + b'{"text": "Presale now", "id": 7}\n{"text": "hello", "id": 8}\n')
    assert result.exit_code == 0, result.output
    assert [(r["text"], r["id"], r["label"]) for r in rows] == [("Presale now", 7, "ico"), ("hello", 8, "benign")]
    # scan: an export and a JSONL file
    export = tmp_path / "bom.json"
    export.write_bytes(
        bom
        + json.dumps(
            {"name": "C", "type": "public_channel", "id": 5, "messages": [good_message(1, "Presale bom")]}
        ).encode()
    )
    lines = tmp_path / "bom.jsonl"
    lines.write_bytes(bom + json.dumps({"text": "Presale line", "chat_id": -7, "message_id": 1}).encode() + b"\n")
    result = scan(tmp_path, fake_model, export, lines)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert sorted(conn.execute("SELECT text FROM post_versions").fetchall()) == [
            ("Presale bom",),
            ("Presale line",),
        ]
    # training corpus files
    from classifier.corpus import load_corpus

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(bom + b'{"text": "Presale of $X", "label": "ico"}\n{"text": "hello", "label": "benign"}\n')
    problems = []
    posts = load_corpus([corpus], problems)
    assert [(p.text, p.label) for p in posts] == [("Presale of $X", "ico"), ("hello", "benign")] and problems == []


# -- SQL-like text ---------------------------------------------------------------------------------------


async def test_sql_like_text_is_stored_verbatim_and_harmless(harness, tmp_path):
    chat = {"id": -1006666666666, "type": "channel", "title": SQL, "username": "robert_tables"}
    text = f'Presale {SQL} " OR 1=1; --'
    await harness.send(U.channel_post(1, text, chat=chat))
    await harness.send(U.private_message(1, f"/check presale {SQL}", user=U.STRANGER))
    assert harness.storage.post(chat["id"], 1)["label"] == "ico"
    assert harness.storage.post_versions(chat["id"], 1)[0]["text"] == text
    assert harness.storage.chat(chat["id"])["title"] == SQL
    assert {"flags", "posts", "reviews", "chats", "alerts", "outbox"} <= set(harness.storage.db.table_names())
    [flag] = harness.storage.all_flags()
    assert flag["text"] == text and flag["chat_title"] == SQL
    await harness.send(U.command("/export", MODS))
    [doc] = harness.api.calls_to("sendDocument")
    [row] = list(csv.DictReader(io.StringIO(next(iter(doc.files.values()))[1].decode())))
    assert row["text"] == text and row["chat_title"] == SQL
    result = CliRunner().invoke(
        cli, ["export", "--format", "jsonl", "--db", str(tmp_path / "bot.db")], env={"TELEGRAM_BOT_TOKEN": TEST_TOKEN}
    )
    assert result.exit_code == 0, result.output
    [exported] = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert exported["text"] == text and exported["chat_title"] == SQL


# -- markup- and link-like text --------------------------------------------------------------------------

HOSTILE_POST = (
    'Presale <a href="http://evil.example/a">click</a> <b>bold</b> &lt;i&gt; [x](http://evil.example/md) '
    "*bold* _it_ `code` t.me/scam_channel https://evil.example/p @scam_bot </pre></code>"
)
HOSTILE_TITLE = '<a href="http://evil.example/t">Mods</a> <b>t</b> [y](http://evil.example/y) t.me/scam @scam_bot &amp;'
LINK_BAITS = ("evil.example", "t.me/scam", "@scam_bot", "http://", "https://evil")


class Parsed(HTMLParser):
    """Tags, links and the text outside <pre>/<code> of one sent HTML message."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.open: list[str] = []
        self.outside: list[str] = []
        self.inside: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"unbalanced </{tag}> after {self.open}"
        self.open.pop()

    def handle_data(self, data):
        (self.inside if {"pre", "code"} & set(self.open) else self.outside).append(data)


def assert_no_markup_from_the_post(html: str, own_links: set[str]) -> None:
    parsed = Parsed(html)
    assert parsed.open == [], "unclosed tags"
    assert set(parsed.tags) <= {"b", "i", "code", "pre", "a"}, parsed.tags
    assert set(parsed.hrefs) <= own_links, parsed.hrefs
    outside = "".join(parsed.outside)
    for bait in LINK_BAITS:
        assert bait not in outside, f"{bait!r} outside <pre>/<code>: {outside!r}"


async def test_alerts_and_listings_carry_no_markup_or_links_from_posts_or_titles(harness):
    chat = {"id": -1008888888888, "type": "channel", "title": HOSTILE_TITLE, "username": "gems_channel"}
    await harness.send(U.channel_post(7, HOSTILE_POST, chat=chat))
    await harness.send(U.my_chat_member(chat, "left", "administrator"))
    await harness.flush()
    own = {"https://t.me/gems_channel/7"}
    sent = harness.sent_texts()
    assert len(sent) == 2  # the alert and the "now watches" notice
    alert = next(t for t in sent if "alert #" in t)
    assert "<pre>" in alert and "click" in alert and "[x](http://evil.example/md)" in alert
    for command in ("/pending", "/recent", "/chats"):
        await harness.send(U.command(command, MODS))
    message = None
    for call in harness.api.calls_to("sendMessage"):
        assert_no_markup_from_the_post(call.params["text"], own)
        markup = call.params.get("reply_markup") or {}
        markup = json.loads(markup) if isinstance(markup, str) else markup
        for row in markup.get("inline_keyboard", []):
            assert all("url" not in b for b in row)  # only our callback buttons, no link buttons
    # The review edit and the digest too.
    message = next(m for m in harness.api.messages.values() if "alert #" in m["text"])
    confirm = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await harness.send(U.callback(confirm, U.MODERATOR | {"first_name": HOSTILE_TITLE}, message))
    from bot.digest import queue_digest

    harness.storage.clock = lambda: 4_000_000_000.0
    queue_digest(harness.storage, MODERATOR_CHAT_ID)
    await harness.flush()
    for call in harness.api.calls_to("editMessageText") + harness.api.calls_to("sendMessage"):
        assert_no_markup_from_the_post(call.params["text"], own)


async def test_a_real_verdict_on_a_hostile_post_shows_reasons_in_code(bot_factory, trained_model):
    harness = await bot_factory(classifier=trained_model)
    await harness.send(
        U.private_message(1, "/check " + HOSTILE_POST + " presale live, 1 BNB = 50,000 MOON, buy now", user=U.STRANGER)
    )
    reply = harness.api.calls_to("sendMessage")[-1].params["text"]
    assert_no_markup_from_the_post(reply, set())


async def test_an_alert_for_a_private_channel_links_only_to_the_post(harness):
    await harness.send(U.channel_post(3, HOSTILE_POST, chat=U.PRIVATE_CHANNEL | {"title": HOSTILE_TITLE}))
    await harness.flush()
    [alert] = harness.sent_texts()
    assert_no_markup_from_the_post(alert, {"https://t.me/c/9876543210/3"})
    assert Parsed(alert).hrefs == ["https://t.me/c/9876543210/3"]


# -- the token --------------------------------------------------------------------------------------------


async def test_the_token_appears_in_no_log_error_or_export(harness, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    await harness.send(U.channel_post(1, f"Presale, and someone pasted bot{TEST_TOKEN[:6]}"))
    harness.api.fail("sendMessage", 429, retry_after=1)
    await harness.flush()
    harness.api.fail("sendMessage", 500, times=3)
    await harness.send(U.channel_post(2, "Airdrop now"))
    await harness.flush()
    harness.api.fail("answerCallbackQuery", 400)
    await harness.send(U.callback("rv:1:c:0000000000000000", U.MODERATOR, {"message_id": 1, "date": 1, "chat": MODS}))
    await harness.send(U.command("/export", MODS))
    await harness.send(U.command("/model", MODS))
    [doc] = harness.api.calls_to("sendDocument")
    exported = next(iter(doc.files.values()))[1].decode()
    result = CliRunner().invoke(
        cli, ["export", "--db", str(tmp_path / "bot.db")], env={"TELEGRAM_BOT_TOKEN": TEST_TOKEN}
    )
    jsonl = CliRunner().invoke(
        cli, ["export", "--format", "jsonl", "--db", str(tmp_path / "bot.db")], env={"TELEGRAM_BOT_TOKEN": TEST_TOKEN}
    )
    assert result.exit_code == 0 and jsonl.exit_code == 0
    sent = "".join(json.dumps(c.params) for c in harness.api.calls)
    for where, text in {
        "log": caplog.text,
        "/export": exported,
        "export csv": result.output,
        "export jsonl": jsonl.output,
        "sent to Telegram": sent,
    }.items():
        assert TEST_TOKEN not in text, where
        assert TEST_TOKEN.split(":")[1] not in text, where


def test_a_rejected_token_while_sending_the_scan_digest_is_not_printed(tmp_path, fake_model):
    from tests.fakes.bot_api import FakeBotApiServer

    export = tmp_path / "posts.jsonl"
    export.write_text(json.dumps({"text": "Presale live", "chat_id": -5, "message_id": 1}) + "\n")
    server = FakeBotApiServer().start()
    server.api.fail("getMe", 401, times=3)
    try:
        env = scan_env(tmp_path) | {"TELEGRAM_API_URL": server.base_url, "MODERATOR_CHAT_ID": str(MODERATOR_CHAT_ID)}
        result = CliRunner().invoke(cli, obj=fake_model(), args=["scan", "--alert", str(export)], env=env)
    finally:
        server.stop()
    assert "Sending the digest failed (InvalidToken" in result.output and "<token>" in result.output
    assert TEST_TOKEN not in result.output and TEST_TOKEN.split(":")[1] not in result.output
    assert "is queued (outbox 1)" in result.output


async def test_a_real_alert_on_a_hostile_post_carries_no_markup_or_links(bot_factory, trained_model):
    harness = await bot_factory(classifier=trained_model, alert_threshold=0.0)
    post = (
        HOSTILE_POST + " 1 BNB = 50,000 $MOON, whitelist closes Friday, buy at https://moon-sale.example/?ref=EVIL "
        "t.me/moon_presale DM @moon_admin"
    )
    chat = {"id": -1008888888888, "type": "channel", "title": HOSTILE_TITLE, "username": "gems_channel"}
    await harness.send(U.channel_post(7, post, chat=chat))
    await harness.flush()
    [alert] = harness.sent_texts()
    assert "Why:" in alert  # the real reasons, which quote links and handles found in the post
    assert_no_markup_from_the_post(alert, {"https://t.me/gems_channel/7"})
    assert "moon-sale.example" not in "".join(Parsed(alert).outside)


async def test_commands_in_a_channel_post_or_from_an_anonymous_admin_are_not_obeyed(harness, caplog):
    await harness.send(U.channel_post(1, "Presale live"))
    before = db_state(harness.storage)
    await harness.send(U.channel_post(2, "/export", entities=[{"type": "bot_command", "offset": 0, "length": 7}]))
    anonymous = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
    await harness.send(U.command("/export", MODS, user=anonymous, sender_chat=MODS))
    assert harness.api.calls_to("sendDocument") == []
    assert "refused /export by non-moderator 1087968824" in caplog.text
    # The channel's "/export" is a post like any other: scanned and stored, never run.
    after = db_state(harness.storage)
    assert after["flags"] == before["flags"] and harness.storage.post(U.CHANNEL["id"], 2) is not None


# -- the real process ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_real_bot_survives_a_hostile_stream_and_logs_no_token(tmp_path, model_path):
    """`compliance-bot run` over HTTP: a 100 KB post, lone surrogates and null bytes, markup, forged buttons,
    strangers' commands, garbage updates. Everything is refused or scanned, the bot stays up, and its log
    holds every refusal and never the token."""
    from tests.fakes.bot_api import FakeBotApiServer
    from tests.test_app_e2e import PROMO, BotProcess, alerts_sent, wait_for

    server = FakeBotApiServer().start()
    bot = None
    try:
        bot = BotProcess(server, tmp_path, model_path)
        chat = {"id": -1008888888888, "type": "channel", "title": HOSTILE_TITLE, "username": "gems_channel"}
        server.api.push_update(U.channel_post(1, PROMO + " " + HOSTILE_POST, chat=chat))
        server.api.push_update(U.channel_post(2, PROMO + " \ud800\x00 " + "z" * 100_000))
        server.api.push_update(
            U.channel_post(
                3,
                "Presale",
                entities=[{"type": "text_link", "offset": 99, "length": 9, "url": "https://presale.example"}],
            )
        )
        server.api.push_update(
            {
                "poll": {
                    "id": "1",
                    "question": "?",
                    "options": [],
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                }
            }
        )
        for name in MODERATOR_COMMAND_NAMES:
            server.api.push_update(U.command(f"/{name}", MODS, user=U.STRANGER))
            server.api.push_update(U.command(f"/{name}", UNKNOWN_GROUP))
        alert = wait_for(
            lambda: [a for a in alerts_sent(server) if "gems_channel/1" in a.params["text"]],
            60,
            "the alert of post 1 (an update PTB cannot parse used to stop the bot for good)",
        )[0]
        message = {"message_id": 1, "date": 1, "chat": MODS}
        data = alert.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        for forged in ("rv:1:c:0000000000000000", data[:-2], data + "0" * 80, data.replace("rv:", "rv:9")):
            server.api.push_update(U.callback(forged, U.MODERATOR, message))
        server.api.push_update(U.callback(data, U.STRANGER, message))
        wait_for(lambda: len(server.api.calls_to("answerCallbackQuery")) == 5, 30, "the five refusals")
        wait_for(lambda: server.api.pending_updates() == 0, 30, "every update confirmed")
        assert bot.proc.poll() is None, bot.log()
        log = bot.log()
        assert log.count("refused malformed or forged callback data") == 4
        assert "refused review of alert 1 by non-moderator 666" in log
        assert log.count("by non-moderator 666 in chat") == len(MODERATOR_COMMAND_NAMES)
        assert log.count(f"in chat {UNKNOWN_GROUP['id']}: not the moderators' chat nor private") == len(
            MODERATOR_COMMAND_NAMES
        )
        assert "Traceback" not in log and "error while handling" not in log
        # An update PTB cannot parse is skipped, named in one line; the updates after it are handled.
        assert "could not be read (TypeError" in log and "Error while parsing updates" not in log
        assert TEST_TOKEN not in log and TEST_TOKEN.split(":")[1] not in log
        assert server.api.calls_to("sendDocument") == []
        with sqlite3.connect(tmp_path / "bot.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM reviews").fetchone() == (0,)
            stored = dict(conn.execute("SELECT message_id, text FROM post_versions").fetchall())
        assert set(stored) >= {1, 2} and "\ufffd\x00" in stored[2] and len(stored[2]) == MAX_CHARS
        for call in server.api.calls_to("sendMessage"):
            assert_no_markup_from_the_post(
                call.params["text"],
                {"https://t.me/gems_channel/1", "https://t.me/cryptogems/2", "https://t.me/cryptogems/3"},
            )
    finally:
        if bot is not None:
            bot.stop()
        server.stop()
