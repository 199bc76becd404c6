"""Automatic deletion: off by default, per chat, with a dry run; logged as the bot's, shown in alerts and the digest."""

from bot.action_log import actions
from bot.autodelete import candidates, rules, set_rule
from bot.digest import build_digest
from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U

MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}
SPAMMER = {"id": 4242, "is_bot": False, "first_name": "Sam", "username": "sam_spam"}


async def run_job(harness) -> None:
    [job] = [j for j in harness.app.job_queue.jobs() if j.name == "autodelete"]
    await job.run(harness.app)


def last_reply(harness) -> str:
    return harness.api.calls_to("sendMessage")[-1].params["text"]


async def promotion_under_a_rule(harness) -> None:
    """The bot, an admin of the group, knows it; deletion is on there (0.95); then a promotion (p=0.97) comes."""
    harness.api.set_member(U.GROUP["id"])
    await harness.send(U.group_message(1, "hello", user=SPAMMER))
    set_rule(harness.storage, U.GROUP["id"], 0.95, False, 111)
    harness.storage.clock = lambda: 2e9  # later than the rule
    await harness.send(U.group_message(10, "Presale of $MOON", user=SPAMMER))


async def test_off_by_default(harness):
    harness.api.set_member(U.GROUP["id"])
    await harness.send(U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await run_job(harness)
    assert harness.api.calls_to("deleteMessage") == [] and actions(harness.storage) == []


async def test_on_deletes_new_flags_at_the_threshold_once_and_logs_the_bot(harness):
    harness.api.set_member(U.GROUP["id"])
    await harness.send(U.group_message(9, "Presale before the rule", user=SPAMMER))  # older: left to moderators
    await harness.send(U.group_message(1, "hello", user=SPAMMER))  # the group is known to the bot
    await harness.send(U.command("/autodelete Traders chat on 0.96", MODS))
    assert "Automatic deletion is on in <code>Traders chat</code> (id -1005555555555)" in last_reply(harness)
    harness.storage.clock = lambda: 2e9  # later than the rule
    await harness.send(U.group_message(10, "Presale of $MOON", user=SPAMMER))  # p=0.97: deleted
    await harness.send(U.group_message(11, "Airdrop soon", user=SPAMMER))  # p=0.93: below the threshold
    await harness.flush()
    await run_job(harness)
    await run_job(harness)
    [delete] = harness.api.calls_to("deleteMessage")
    assert (delete.params["chat_id"], delete.params["message_id"]) == (U.GROUP["id"], 10)
    [row] = actions(harness.storage)
    assert (row["actor_id"], row["action"], row["outcome"], row["message_id"]) == (None, "delete", "done", 10)
    edited = harness.api.calls_to("editMessageText")[-1].params["text"]
    assert "🗑 Post deleted by the bot at" in edited
    digest, _ = build_digest(harness.storage, 0, 3e9)
    assert "🤖 Deleted automatically: 1" in digest


async def test_a_false_positive_is_not_deleted(harness):
    await promotion_under_a_rule(harness)
    harness.storage.record_review(1, "false_positive", None, 111, "Mia")
    assert candidates(harness.storage) == []


async def test_dry_run_only_says_what_it_would_delete(harness):
    harness.api.set_member(U.GROUP["id"])
    await harness.send(U.group_message(1, "hello", user=SPAMMER))
    await harness.send(U.command("/autodelete dry on -1005555555555", MODS))
    assert "Dry run: the bot will only say what it would delete" in last_reply(harness)
    harness.storage.clock = lambda: 2e9
    await harness.send(U.group_message(10, "Presale of $MOON", user=SPAMMER))
    await harness.flush()
    await run_job(harness)
    await run_job(harness)
    assert harness.api.calls_to("deleteMessage") == []
    [row] = actions(harness.storage)
    assert (row["actor_id"], row["outcome"], row["telegram_answer"]) == (None, "dry_run", "p=0.97 ≥ 0.95")
    assert (
        "🧪 Dry run: the bot would have deleted this post at"
        in harness.api.calls_to("editMessageText")[-1].params["text"]
    )
    digest, _ = build_digest(harness.storage, 0, 3e9)
    assert "dry run, would have deleted: 1" in digest


async def test_a_refusal_is_logged_and_not_retried(harness):
    await promotion_under_a_rule(harness)
    harness.api.refuse("deleteMessage", U.GROUP["id"], "Bad Request: message can't be deleted")
    await run_job(harness)
    await run_job(harness)
    assert len(harness.api.calls_to("deleteMessage", ok_only=False)) == 1
    [row] = actions(harness.storage)
    assert (row["outcome"], row["telegram_answer"]) == ("refused", "Message can't be deleted")


async def test_command_lists_turns_off_and_refuses_bad_input(harness):
    await harness.send(U.group_message(1, "hello", user=SPAMMER))
    await harness.send(U.command("/autodelete", MODS))
    assert last_reply(harness).startswith("Automatic deletion is off in every chat.")
    await harness.send(U.command("/autodelete on Traders chat", MODS))
    assert "⚠️ For now the bot is not an admin allowed to delete messages or ban users here." in last_reply(harness)
    await harness.send(U.command("/autodelete", MODS))
    assert "• <code>Traders chat</code> (id -1005555555555): p ≥ 0.95, deletes" in last_reply(harness)
    for bad, needle in (
        ("/autodelete Traders chat on 0.2", "The threshold must be from 0.5 to 1"),
        ("/autodelete Nowhere on", "No chat the bot knows is 'Nowhere'"),
        ("/autodelete Traders chat", "Usage: /autodelete CHAT on"),
        ("/autodelete on", "Usage: /autodelete CHAT on"),
    ):
        await harness.send(U.command(bad, MODS))
        assert needle in last_reply(harness), bad
    await harness.send(U.command("/autodelete @nobody off", MODS))
    assert "No chat the bot knows is '@nobody'" in last_reply(harness)
    await harness.send(U.command("/autodelete Traders chat off", MODS))
    assert last_reply(harness) == "Automatic deletion is off in <code>Traders chat</code> (id -1005555555555)."
    assert rules(harness.storage) == []
    await harness.send(U.command("/autodelete Traders chat on", U.GROUP, user=U.STRANGER))
    assert last_reply(harness) == "Sorry, that command is for the moderators only."
    assert rules(harness.storage) == []
