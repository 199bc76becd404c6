"""Repeat offenders: the ranking, the alert's "earlier confirmed flags" line, /offenders and the CLI."""

from click.testing import CliRunner

from bot.actors import Actors
from bot.cli import cli
from bot.offenders import history, offenders
from bot.post import Post
from bot.storage import Storage
from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

SAM = Actors("user", 4242, "sam_spam", "Sam Spam")
ANN = Actors("user", 5, None, "Ann")
MOON = Actors(
    "channel", sender_chat_id=-1003333333333, sender_chat_title="Moon Calls", sender_chat_username="mooncalls"
)
FORWARDED_MOON = Actors(
    "user",
    6,
    None,
    "Bob",
    forward_chat_id=-1003333333333,
    forward_chat_title="Moon Calls",
    forward_chat_username="mooncalls",
)
MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}
SPAMMER = {"id": 4242, "is_bot": False, "first_name": "Sam", "last_name": "Spam", "username": "sam_spam"}
GROUP2 = {"id": -1006666666666, "type": "supergroup", "title": "Second chat"}


class Clock:
    def __init__(self, now: float = 1_750_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def flagged(storage, chat_id, message_id, text, actors, decision="confirm", new_label=None):
    outcome = storage.record_scan(
        Post(chat_id, message_id, text, date=storage.clock(), actors=actors),
        FakeClassifier().predict(text),
        threshold=0.8,
        store_benign_text=False,
    )
    if decision:
        storage.record_review(outcome.alert_id, decision, new_label, 111, "Mia")
    return outcome


def populated(path) -> Storage:
    clock = Clock()
    storage = Storage.open(path, clock=clock)
    flagged(storage, -1001, 1, "Presale live #1", SAM)
    clock.now += 86400
    flagged(storage, -1002, 2, "VIP signals #2", SAM)
    flagged(storage, -1002, 3, "Airdrop #3", SAM, decision="false_positive")  # not confirmed: not counted
    flagged(storage, -1001, 4, "Presale #4", SAM, decision=None)  # pending: not counted
    flagged(storage, -1001, 5, "Presale #5", MOON)
    flagged(storage, -1002, 6, "Referral #6", FORWARDED_MOON, decision="relabel", new_label="ico")
    clock.now += 40 * 86400
    flagged(storage, -1003, 7, "Presale #7", ANN)
    return storage


def test_ranking_counts_confirmed_flags_per_actor_label_and_chat(tmp_path):
    storage = populated(tmp_path / "o.db")
    rows = offenders(storage)
    assert [(r["kind"], r["actor_id"], r["flags"], r["ico"], r["trading_service"], r["chats"]) for r in rows] == [
        ("user", 4242, 2, 1, 1, 2),
        ("channel", -1003333333333, 2, 2, 0, 2),  # posted as once, forwarded from once (relabelled to ico)
        ("user", 5, 1, 1, 0, 1),
        ("user", 6, 1, 1, 0, 1),
    ]
    sam = rows[0]
    assert (sam["name"], sam["username"], sam["last_seen"] - sam["first_seen"]) == ("Sam Spam", "sam_spam", 86400)
    assert set(rows[1]["roles"].split(",")) == {"sender", "forwarded_from"}
    # The last 30 days hold only Ann's flag.
    assert [(r["actor_id"], r["flags"]) for r in offenders(storage, days=30)] == [(5, 1)]
    assert offenders(storage, limit=1)[0]["actor_id"] == 4242


def test_history_leaves_out_the_alert_itself(tmp_path):
    storage = populated(tmp_path / "o.db")
    first = storage.all_flags()[0]
    assert history(storage, "user", 4242)["flags"] == 2
    assert history(storage, "user", 4242, first["alert_id"])["flags"] == 1
    assert history(storage, "user", 5, storage.all_flags()[-1]["alert_id"]) is None


def test_cli_offenders(tmp_path):
    populated(tmp_path / "o.db").close()
    result = CliRunner().invoke(cli, ["offenders", "--db", str(tmp_path / "o.db")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Repeat offenders, all time: senders and source channels by confirmed flags"
    assert lines[1].startswith(
        "1. 👤 Sam Spam (@sam_spam, id 4242): 2 confirmed flags (ico 1, trading_service 1) in 2 chats, "
    )
    assert "Moon Calls (@mooncalls, id -1003333333333)" in lines[2] and lines[2].endswith("forwarded from")
    assert "Ann (id 5)" in lines[3]
    assert CliRunner().invoke(cli, ["offenders", "--help"]).output.startswith("Usage: cli offenders [OPTIONS]")


def test_cli_offenders_bad_input_is_one_line(tmp_path):
    for args, needle in (
        (["offenders", "--days", "nan"], "is not a number of days"),
        (["offenders", "--days", "0"], "--days"),
        (["offenders", "--db", str(tmp_path / "missing.db")], "no database at"),
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == (2 if "--days" in args else 1), result.output
        assert needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "missing.db").exists()


async def test_an_alert_mentions_the_senders_earlier_confirmed_flags(harness):
    await harness.send(U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await harness.flush()
    first = harness.sent_texts()[-1]
    assert "confirmed flag" not in first  # nothing earlier
    harness.storage.record_review(1, "confirm", None, 111, "Mia Mod")
    await harness.send(U.group_message(3, "VIP signals daily", GROUP2, user=SPAMMER))
    await harness.flush()
    second = harness.sent_texts()[-1]
    assert "⚠️ The sender has 1 confirmed flag in 1 chat since " in second


async def test_offenders_command(harness):
    await harness.send(U.group_message(10, "Presale of $MOON", user=SPAMMER))
    harness.storage.record_review(1, "confirm", None, 111, "Mia Mod")
    await harness.send(U.command("/offenders", MODS))
    reply = harness.api.calls_to("sendMessage")[-1].params["text"]
    assert "<b>Repeat offenders, all time" in reply
    assert "1. 👤 <code>Sam Spam</code> (@sam_spam, id 4242): 1 confirmed flag (ico 1) in 1 chat" in reply
    await harness.send(U.command("/offenders 7", MODS))
    assert "the last 7 days" in harness.api.calls_to("sendMessage")[-1].params["text"]
    for bad in ("/offenders soon", "/offenders 0", "/offenders 99999"):
        await harness.send(U.command(bad, MODS))
        assert harness.api.calls_to("sendMessage")[-1].params["text"].startswith("/offenders takes a whole number")
    await harness.send(U.command("/offenders", U.GROUP, user=U.STRANGER))
    assert harness.api.calls_to("sendMessage")[-1].params["text"] == "Sorry, that command is for the moderators only."
