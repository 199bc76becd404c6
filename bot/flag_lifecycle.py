"""The life of a flag: its statuses, the events that move it, and the one function every change goes through.

Pure (no SQLite): ``bot.storage`` applies it to the ``flags`` table, and the CLI names the statuses
without loading the storage layer.
"""

from __future__ import annotations

FLAG_STATUSES = ("pending", "confirmed", "false_positive", "relabelled", "withdrawn")
REVIEWED_STATUSES = frozenset({"confirmed", "false_positive", "relabelled"})
# The life of a flag, in one place: every change of a flag's status goes through `flag_transition`.
# event: (the statuses it may leave, None meaning "no flag yet"; the status it leads to)
FLAG_TRANSITIONS: dict[str, tuple[frozenset, str]] = {
    # A post is scanned as promotion for the first time.
    "flag": (frozenset({None}), "pending"),
    # An edit that still reads as promotion is a new claim: whatever was decided about the old text is
    # reopened, and a withdrawn flag comes back.
    "reopen": (frozenset({"pending", "withdrawn"}) | REVIEWED_STATUSES, "pending"),
    # An edit made the post benign: the flag follows the latest text.
    "withdraw": (frozenset({"pending"}) | REVIEWED_STATUSES, "withdrawn"),
    # A moderator's decision (the review buttons). A reviewed flag may be reviewed again (the latest review
    # stands); a withdrawn one may not: the text that was flagged is gone.
    "confirm": (frozenset({"pending"}) | REVIEWED_STATUSES, "confirmed"),
    "false_positive": (frozenset({"pending"}) | REVIEWED_STATUSES, "false_positive"),
    "relabel": (frozenset({"pending"}) | REVIEWED_STATUSES, "relabelled"),
}
REVIEW_DECISIONS = ("confirm", "false_positive", "relabel")


class IllegalTransition(ValueError):
    """A change of a flag's status that FLAG_TRANSITIONS does not allow."""


def flag_may(status: str | None, event: str) -> bool:
    """Whether a flag in ``status`` (None: no flag yet) may take ``event``."""
    return status in FLAG_TRANSITIONS[event][0]


def flag_transition(status: str | None, event: str) -> str:
    """The status a flag in ``status`` (None: no flag yet) moves to on ``event``; refuses what the table does not allow."""
    if event not in FLAG_TRANSITIONS:
        raise IllegalTransition(f"no such flag event: {event!r}")
    if not flag_may(status, event):
        raise IllegalTransition(f"a {status or 'new'} flag cannot take {event!r}")
    return FLAG_TRANSITIONS[event][1]
