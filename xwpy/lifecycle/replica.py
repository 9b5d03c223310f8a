"""The replica life cycle.

::

    ASSIGNED --worker reports it running--> RUNNING --result reported--> DONE
       |                                      |-----job failed---------> FAILED
       |                                      |-----lease expired------> LOST
       |                                      '-----no longer needed---> ABORTED
       '--(the same four exits, straight from ASSIGNED)

A replica is *active* while ASSIGNED or RUNNING: it holds a lease on its host. A finished DONE
replica is then validated once: VALID when its digest is the certified one, INVALID otherwise.
"""

from __future__ import annotations

import enum

from xwpy.lifecycle.fsm import check


class ReplicaStatus(str, enum.Enum):
    ASSIGNED = "ASSIGNED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    LOST = "LOST"
    ABORTED = "ABORTED"

    @property
    def active(self) -> bool:
        return self in ACTIVE


class Validation(str, enum.Enum):
    PENDING = "PENDING"
    VALID = "VALID"
    INVALID = "INVALID"


ACTIVE = frozenset({ReplicaStatus.ASSIGNED, ReplicaStatus.RUNNING})
_EXITS = frozenset({ReplicaStatus.DONE, ReplicaStatus.FAILED, ReplicaStatus.LOST, ReplicaStatus.ABORTED})

REPLICA_TRANSITIONS: dict[ReplicaStatus, frozenset[ReplicaStatus]] = {
    ReplicaStatus.ASSIGNED: _EXITS | {ReplicaStatus.RUNNING},
    ReplicaStatus.RUNNING: _EXITS,
    ReplicaStatus.DONE: frozenset(),
    ReplicaStatus.FAILED: frozenset(),
    ReplicaStatus.LOST: frozenset(),
    ReplicaStatus.ABORTED: frozenset(),
}

VALIDATION_TRANSITIONS: dict[Validation, frozenset[Validation]] = {
    Validation.PENDING: frozenset({Validation.VALID, Validation.INVALID}),
    Validation.VALID: frozenset(),
    Validation.INVALID: frozenset(),
}


def transition(old: ReplicaStatus, new: ReplicaStatus) -> ReplicaStatus:
    return check("replica", REPLICA_TRANSITIONS, old, new)


def validate(old: Validation, new: Validation) -> Validation:
    return check("validation", VALIDATION_TRANSITIONS, old, new)
