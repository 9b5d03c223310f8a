"""What an oracle handler is: pure decisions from a request's params and its jobs' outcomes.

A handler owns one app of the hub (by name). The oracle asks it what to do and carries it out:

- ``start(params, ctx)`` once, when the request arrives: its initial state and first decision;
- ``step(params, state, jobs, ctx)`` whenever one of its jobs reaches a final state (and after a
  restart): the whole picture (every job it asked for, final or not) in, one decision out.

Decisions: :class:`Submit` more jobs, :class:`Wait`, :class:`Done` (this certified job's result
goes on chain), :class:`Fail` (give up; the requester can take the escrow back after the
deadline). No I/O and no clock of their own: they are tested directly, and the oracle can
replay a step after a crash and get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Union

from xwpy.lifecycle import JobStatus

# The hub takes results up to 1024 bytes, but the requester's callback stores them within a
# bounded gas stipend (about 480 bytes for VanityConsumer with the demo stipend).
MAX_RESULT = 400


class BadParams(ValueError):
    """The request's params are not something this handler can run; the message says why."""


@dataclass(frozen=True)
class GridApp:
    """How the oracle registers the handler's grid app (owned by the oracle's account)."""

    name: str
    command: tuple[str, ...]
    validator: str = "quorum"
    replication: int = 2
    quorum: int = 2
    limits: Mapping[str, int] = field(
        default_factory=lambda: {
            "wall_seconds": 600, "cpu_seconds": 600, "memory_bytes": 512 << 20, "output_bytes": 1 << 20,
            "processes": 16,
        }
    )


@dataclass(frozen=True)
class Unit:
    """A job to submit: the handler's own TAG for it, and its arguments."""

    tag: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class JobView:
    """One of the handler's jobs as the grid sees it. FILES: the certified result's files."""

    job_id: int
    tag: str
    status: str  # a JobStatus value
    digest: str | None = None
    files: Mapping[str, bytes] | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        return JobStatus(self.status).final


@dataclass(frozen=True)
class Context:
    now: float  # the chain's time, as well as the oracle knows it
    deadline: int  # the task's deadline, in chain time
    margin: float  # no new work this close to the deadline
    hosts: int  # hosts the grid knows are alive
    seed: int = 0  # 256 random bits for a handler's start (e.g. where a search begins)

    @property
    def time_left(self) -> float:
        return self.deadline - self.now - self.margin


@dataclass(frozen=True)
class Submit:
    units: tuple[Unit, ...]
    state: Mapping | None = None  # the handler's new state, if it changes


@dataclass(frozen=True)
class Wait:
    state: Mapping | None = None


@dataclass(frozen=True)
class Done:
    job_id: int  # the certified job whose result this is: its digest goes on chain with it
    result: bytes


@dataclass(frozen=True)
class Fail:
    reason: str


Decision = Union[Submit, Wait, Done, Fail]


class Handler(Protocol):
    app: str  # the hub's app name
    price: int  # the price a demo deployment registers (RLC base units)
    grid_app: GridApp

    def start(self, params: bytes, ctx: Context) -> tuple[dict, Decision]: ...

    def step(self, params: bytes, state: Mapping, jobs: list[JobView], ctx: Context) -> Decision: ...


def done_or_fail(job: JobView, result: bytes) -> Decision:
    if len(result) > MAX_RESULT:
        return Fail(f"result of {len(result)} bytes: at most {MAX_RESULT} go on chain")
    return Done(job.job_id, result)
