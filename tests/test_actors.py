"""Who made a post: read from live messages, stored beside the post under the text's retention, upgraded into."""

import sqlite3

import sqlite_utils
from telegram import Message

from bot.actors import Actors, actors_from_message, post_actors
from bot.post import Post
from bot.storage import Storage, migrations
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

USER = {"id": 4242, "is_bot": False, "first_name": "Sam", "last_name": "Spam", "username": "sam_spam"}
SOURCE = {"id": -1003333333333, "type": "channel", "title": "Moon Calls", "username": "mooncalls"}


def message(update: dict) -> Message:
    return Message.de_json(next(iter(update.values())), None)


def test_a_user_in_a_group():
    actors = actors_from_message(message(U.group_message(1, "hi", user=USER)))
    assert actors == Actors("user", 4242, "sam_spam", "Sam Spam")


def test_a_user_without_username_and_a_forward_from_a_channel():
    forward = {"type": "channel", "date": 1, "message_id": 9, "chat": SOURCE}
    update = U.group_message(1, "hi", user={"id": 5, "is_bot": False, "first_name": "Ann"}, forward_origin=forward)
    actors = actors_from_message(message(update))
    assert (actors.sender_kind, actors.user_id, actors.username, actors.user_name) == ("user", 5, None, "Ann")
    assert (actors.forward_chat_id, actors.forward_chat_title, actors.forward_chat_username) == (
        SOURCE["id"],
        "Moon Calls",
        "mooncalls",
    )


def test_posted_as_a_channel_anonymous_admin_linked_channel_and_channel_post():
    bot_placeholder = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
    as_channel = actors_from_message(message(U.group_message(1, "x", user=bot_placeholder, sender_chat=SOURCE)))
    assert (as_channel.sender_kind, as_channel.user_id, as_channel.sender_chat_id) == ("channel", None, SOURCE["id"])
    anonymous = actors_from_message(message(U.group_message(1, "x", user=bot_placeholder, sender_chat=U.GROUP)))
    assert (anonymous.sender_kind, anonymous.user_id, anonymous.sender_chat_id) == ("anonymous_admin", None, None)
    linked = actors_from_message(
        message(U.group_message(1, "x", user=bot_placeholder, sender_chat=SOURCE, is_automatic_forward=True))
    )
    assert (linked.sender_kind, linked.sender_chat_id) == ("linked_channel", SOURCE["id"])
    post = actors_from_message(message(U.channel_post(1, "x")))
    assert (post.sender_kind, post.sender_chat_id, post.sender_chat_username) == (
        "channel_post",
        U.CHANNEL["id"],
        "cryptogems",
    )


def test_a_hostile_name_is_kept_as_text_and_capped():
    update = U.group_message(1, "hi", user={"id": 7, "is_bot": False, "first_name": "\ud800" + "x" * 400})
    actors = actors_from_message(message(update))
    assert len(actors.user_name) == 256 and "\ud800" not in actors.user_name


def scan(storage, post, store_benign_text=False):
    return storage.record_scan(
        post, FakeClassifier().predict(post.text), threshold=0.8, store_benign_text=store_benign_text
    )


def test_actors_follow_the_texts_retention(tmp_path):
    storage = Storage.open(tmp_path / "a.db")
    actors = Actors("user", 4242, "sam_spam", "Sam Spam")
    scan(storage, Post(-1005555555555, 1, "Presale live", actors=actors))
    scan(storage, Post(-1005555555555, 2, "nice weather", actors=actors))
    scan(storage, Post(-1005555555555, 3, "nice weather", actors=actors), store_benign_text=True)
    assert post_actors(storage.db, -1005555555555, 1)["username"] == "sam_spam"
    assert post_actors(storage.db, -1005555555555, 2) is None  # benign, no text kept: no actors either
    assert post_actors(storage.db, -1005555555555, 3)["user_id"] == 4242
    scan(storage, Post(-1005555555555, 1, "edited: nice weather", actors=actors))  # an edit made it benign
    assert post_actors(storage.db, -1005555555555, 1) is None
    # A source without actors (an export) leaves a flagged post's actors as they are.
    scan(storage, Post(-1005555555555, 4, "Presale again", actors=actors))
    scan(storage, Post(-1005555555555, 4, "Presale again, edited"))
    assert post_actors(storage.db, -1005555555555, 4)["user_id"] == 4242


def test_an_existing_database_upgrades_and_keeps_what_it_holds(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m008_actors_and_actions")
    old = Storage(db)
    flagged = scan(old, Post(-1001111111111, 5, "Presale live", chat_title="Channel"))
    old.record_review(flagged.alert_id, "confirm", None, 111, "Mia")
    before = list(db.query("SELECT * FROM flag_rows"))
    old.close()
    storage = Storage.open(path)
    assert "m008_actors_and_actions" in [m.name for m in migrations.applied(storage.db)]
    assert list(storage.db.query("SELECT * FROM flag_rows")) == before
    assert list(storage.db.query("SELECT * FROM offender_flags")) == []  # no actors known for old posts
    for table in ("post_actors", "moderation_actions", "autodelete_chats"):
        assert storage.db[table].exists()
