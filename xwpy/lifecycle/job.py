"""The job life cycle.

::

    PENDING --first replica leased--> RUNNING --quorum agrees-------> COMPLETED
       |                                 |------too many failures---> ERROR
       |                                 |------no quorum possible--> ERROR  (policy.py: no host
       |                                 |                                     may run it any more)
       |                                 '------owner cancels-------> CANCELLED
       |----owner cancels---------------------------------------------> CANCELLED
       |----a job it runs after ends uncertified (job graphs)----------> CANCELLED
       '----cannot run (app unusable)---------------------------------> ERROR

COMPLETED means certified: ``quorum`` replicas (or one verified result) agree on the digest.
Final states have no way out: a certified job is never certified twice.
"""

from __future__ import annotations

import enum

from xwpy.lifecycle.fsm import check


class JobStatus(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({JobStatus.COMPLETED, JobStatus.ERROR, JobStatus.CANCELLED})
# The same, as the wire and the catalog spell them (in the enum's order).
FINAL_NAMES: tuple[str, ...] = tuple(s.value for s in JobStatus if s in FINAL)
ACTIVE_NAMES: tuple[str, ...] = tuple(s.value for s in JobStatus if s not in FINAL)

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset(
        {JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.ERROR}
    ),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.ERROR, JobStatus.CANCELLED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.ERROR: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def transition(old: JobStatus, new: JobStatus) -> JobStatus:
    return check("job", JOB_TRANSITIONS, old, new)
