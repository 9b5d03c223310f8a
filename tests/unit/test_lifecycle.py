"""Walk every transition of the job and replica life cycles: the allowed ones pass, all others fail."""

import itertools

import pytest

from xwpy.lifecycle import IllegalTransition, JobStatus, ReplicaStatus, Validation
from xwpy.lifecycle import job as job_fsm
from xwpy.lifecycle import replica as replica_fsm

JOB_ALLOWED = {
    (JobStatus.PENDING, JobStatus.RUNNING),
    (JobStatus.PENDING, JobStatus.CANCELLED),
    (JobStatus.PENDING, JobStatus.ERROR),
    (JobStatus.RUNNING, JobStatus.COMPLETED),
    (JobStatus.RUNNING, JobStatus.ERROR),
    (JobStatus.RUNNING, JobStatus.CANCELLED),
}

ACTIVE = (ReplicaStatus.ASSIGNED, ReplicaStatus.RUNNING)
ENDS = (ReplicaStatus.DONE, ReplicaStatus.FAILED, ReplicaStatus.LOST, ReplicaStatus.ABORTED)
REPLICA_ALLOWED = {(a, e) for a in ACTIVE for e in ENDS} | {(ReplicaStatus.ASSIGNED, ReplicaStatus.RUNNING)}


@pytest.mark.parametrize("old,new", list(itertools.product(JobStatus, JobStatus)))
def test_job_transitions(old, new):
    if (old, new) in JOB_ALLOWED:
        assert job_fsm.transition(old, new) is new
    else:
        with pytest.raises(IllegalTransition):
            job_fsm.transition(old, new)


@pytest.mark.parametrize("old,new", list(itertools.product(ReplicaStatus, ReplicaStatus)))
def test_replica_transitions(old, new):
    if (old, new) in REPLICA_ALLOWED:
        assert replica_fsm.transition(old, new) is new
    else:
        with pytest.raises(IllegalTransition):
            replica_fsm.transition(old, new)


@pytest.mark.parametrize("old,new", list(itertools.product(Validation, Validation)))
def test_validation_happens_once(old, new):
    if old is Validation.PENDING and new is not Validation.PENDING:
        assert replica_fsm.validate(old, new) is new
    else:
        with pytest.raises(IllegalTransition):
            replica_fsm.validate(old, new)


def test_final_states_are_exactly_those_without_exits():
    assert {s for s in JobStatus if s.final} == {s for s, out in job_fsm.JOB_TRANSITIONS.items() if not out}
    assert {s for s in ReplicaStatus if s.active} == set(ACTIVE)
