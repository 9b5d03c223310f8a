"""Walk every transition of the chain-task life cycle: the allowed ones pass, all others fail."""

import itertools

import pytest

from xwpy.lifecycle import IllegalTransition
from xwpy.lifecycle.chaintask import ACTIVE, FINAL, TASK_TRANSITIONS, TaskStatus, transition

S = TaskStatus
ALLOWED = {
    (S.NEW, S.RUNNING), (S.NEW, S.FAILED), (S.NEW, S.EXPIRED),
    (S.RUNNING, S.CERTIFIED), (S.RUNNING, S.FAILED), (S.RUNNING, S.EXPIRED),
    (S.CERTIFIED, S.COMMITTING), (S.CERTIFIED, S.COMMITTED), (S.CERTIFIED, S.FAILED), (S.CERTIFIED, S.EXPIRED),
    (S.COMMITTING, S.COMMITTED), (S.COMMITTING, S.FAILED), (S.COMMITTING, S.EXPIRED),
}


@pytest.mark.parametrize("old,new", list(itertools.product(S, S)))
def test_transitions(old, new):
    if (old, new) in ALLOWED:
        assert transition(old, new) is new
    else:
        with pytest.raises(IllegalTransition):
            transition(old, new)


def test_final_states_have_no_exit_and_committed_is_reached_only_from_certified_or_committing():
    assert {s for s, out in TASK_TRANSITIONS.items() if not out} == set(FINAL) == {s for s in S if s.final}
    assert ACTIVE | FINAL == set(S) and not ACTIVE & FINAL
    assert {old for old, new in ALLOWED if new is S.COMMITTED} == {S.CERTIFIED, S.COMMITTING}
