"""The life cycle of an on-chain task, as the oracle sees it.

::

    NEW --handler submits jobs--> RUNNING --certified result--> CERTIFIED --commit signed--> COMMITTING
     |                               |                             |   (hash stored first)       |
     |                               |                             '--found done on chain--.    |--mined--> COMMITTED
     |                               |                                                     '----|---------> COMMITTED
     |--no handler / bad params------|--handler gives up / jobs fail-----> FAILED <--refused----|
     '--deadline passed--------------'--deadline passed-----------------> EXPIRED <---------------'
                                       (CERTIFIED and COMMITTING may expire too, or be refunded)

Every arrow is one catalog transaction. COMMITTING is the only state with an effect outside the
catalog in flight: its signed transaction is stored before it is sent, so after a crash the
oracle finds the same transaction (by hash) on chain, or sends the very same bytes again.
Final states have no way out: a task is never committed twice by this oracle, and the hub
itself refuses a second commit.
"""

from __future__ import annotations

import enum

from xwpy.lifecycle.fsm import check


class TaskStatus(str, enum.Enum):
    NEW = "NEW"
    RUNNING = "RUNNING"
    CERTIFIED = "CERTIFIED"
    COMMITTING = "COMMITTING"
    COMMITTED = "COMMITTED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({TaskStatus.COMMITTED, TaskStatus.FAILED, TaskStatus.EXPIRED})
ACTIVE = frozenset(set(TaskStatus) - FINAL)

TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.NEW: frozenset({TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.EXPIRED}),
    TaskStatus.RUNNING: frozenset({TaskStatus.CERTIFIED, TaskStatus.FAILED, TaskStatus.EXPIRED}),
    TaskStatus.CERTIFIED: frozenset(
        {TaskStatus.COMMITTING, TaskStatus.COMMITTED, TaskStatus.FAILED, TaskStatus.EXPIRED}
    ),
    TaskStatus.COMMITTING: frozenset({TaskStatus.COMMITTED, TaskStatus.FAILED, TaskStatus.EXPIRED}),
    TaskStatus.COMMITTED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.EXPIRED: frozenset(),
}


def transition(old: TaskStatus, new: TaskStatus) -> TaskStatus:
    return check("chain task", TASK_TRANSITIONS, old, new)
