"""Moderators' reviews as training data: the bot side of retraining.

The classifier package never reads the database; this module reads the reviewed flags and hands them
to :func:`classifier.train.train_and_save` as ``reviewed`` posts. A confirmed flag keeps its label, a
false positive becomes ``benign``, a relabelled flag takes its new label; of several reviews of one text
(the same text flagged in many chats, or reviewed twice) the latest wins.
"""

from __future__ import annotations

from bot.storage import Storage
from classifier import BENIGN, LABELS, LabelledPost, guess_language


def review_label(review: dict) -> str:
    """The label a review gives its post."""
    if review["decision"] == "false_positive":
        return BENIGN
    return review["new_label"]


def reviewed_posts(storage: Storage) -> tuple[list[LabelledPost], list[str]]:
    """Labelled posts from the latest review of every reviewed flag, oldest review first, and a message
    for every review that could not be used."""
    posts: dict[str, LabelledPost] = {}
    problems: list[str] = []
    for review in storage.reviewed_flags():
        where = f"review {review['review_id']} of flag {review['flag_id']} (chat {review['chat_id']} message {review['message_id']})"
        label = review_label(review)
        if label not in LABELS:
            problems.append(f"{where}: unknown label {label!r}; skipped")
            continue
        text = review["text"]
        if not text or not text.strip():
            problems.append(f"{where}: the post's text is not stored; skipped")
            continue
        posts.pop(text, None)  # a later review of the same text wins, and moves to the end
        posts[text] = LabelledPost(
            text=text, label=label, lang=guess_language(text), source=f"review:{review['review_id']}"
        )
    return list(posts.values()), problems
