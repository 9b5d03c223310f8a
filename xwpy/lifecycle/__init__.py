"""Life cycles of jobs and replicas: one state machine per file, each with its transition table."""

from xwpy.lifecycle.job import ACTIVE_NAMES, FINAL_NAMES, JobStatus, JOB_TRANSITIONS
from xwpy.lifecycle.replica import ReplicaStatus, Validation, REPLICA_TRANSITIONS
from xwpy.lifecycle.fsm import IllegalTransition

__all__ = [
    "ACTIVE_NAMES",
    "FINAL_NAMES",
    "JobStatus",
    "JOB_TRANSITIONS",
    "ReplicaStatus",
    "REPLICA_TRANSITIONS",
    "Validation",
    "IllegalTransition",
]
