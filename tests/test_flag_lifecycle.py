"""The life of a flag: which events move which statuses, and what is refused."""

import pytest

from bot.flag_lifecycle import FLAG_STATUSES, FLAG_TRANSITIONS, IllegalTransition, flag_may, flag_transition


def test_flag_status_changes_follow_one_transition_table():
    assert flag_transition(None, "flag") == "pending"
    assert flag_transition("withdrawn", "reopen") == flag_transition("confirmed", "reopen") == "pending"
    for status in ("pending", "confirmed", "false_positive", "relabelled"):
        assert flag_transition(status, "withdraw") == "withdrawn"
        assert flag_transition(status, "relabel") == "relabelled"
    for status, event in (
        ("withdrawn", "confirm"),
        ("withdrawn", "withdraw"),
        ("pending", "flag"),
        (None, "confirm"),
        ("pending", "escalate"),
    ):
        with pytest.raises(IllegalTransition):
            flag_transition(status, event)
    assert {to for _, to in FLAG_TRANSITIONS.values()} == set(FLAG_STATUSES)


def test_may_answers_what_transition_allows():
    for event in FLAG_TRANSITIONS:
        for status in (None, *FLAG_STATUSES):
            if flag_may(status, event):
                assert flag_transition(status, event) in FLAG_STATUSES
            else:
                with pytest.raises(IllegalTransition):
                    flag_transition(status, event)
