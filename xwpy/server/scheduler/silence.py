"""Hosts that fall silent, and the replicas they hold. Pure functions, no I/O.

Two clocks, kept apart. A host's liveness is its heartbeats: silent for more than a lease (a few
heartbeat periods, :meth:`HostState.alive`) it is not alive, and gets no new work. A replica's
deadline is its app's (hours; ``xwpy app register --deadline``): a host asleep or offline keeps
its replicas until then, and when it comes back its worker resumes them and their results count.
So a laptop that sleeps for an hour loses nothing.

Meanwhile a job whose quorum waits on a silent host may get an extra replica elsewhere, as BOINC
resends work whose host missed its deadline — sooner here, since a deadline is hours:

- only once the host has been silent for ``SILENT_LEASES`` leases (a short nap costs nothing);
- only as many as the quorum lacks without the silent replicas, and at most one per silent replica
  at a time (an extra that is lost or fails may be replaced; extras do not count against the job's
  ``max_replicas``, as lost replicas do not: they replace, they do not add);
- offered first to reliable hosts (``RELIABLE`` consecutive valid results, BOINC's "reliable
  hosts"), then to any host once it has waited a lease.

The first quorum wins: the job is certified once, and its other replicas — the silent one or its
extra, whichever is late — are aborted (their workers are told at their next contact).
"""

from __future__ import annotations

from dataclasses import dataclass

# Leases a host must have been silent before an extra replica of its work may start elsewhere.
SILENT_LEASES = 3
# Consecutive valid results that make a host reliable: it is offered extra replicas first.
RELIABLE = 3

DEADLINE_PASSED = "deadline passed"
NOT_HELD = "lease expired"  # its host is alive, heartbeating, and does not hold it


@dataclass(frozen=True, slots=True)
class Held:
    """An active replica of a job, as the extra-replica rule sees it."""

    id: int
    silent_for: float  # seconds since its host's last sign of life; 0 while the host is alive


def extras(held: list[Held], covered: frozenset[int] | set[int], *, agreeing: int, quorum: int, lease: float,
           silent_leases: float = SILENT_LEASES) -> list[int]:
    """The silent replicas that get an extra replica now (lowest ids first).

    ``held``: the job's active replicas. ``covered``: the replicas that already have an extra,
    active, wanted, or that gave a result. ``agreeing``: the most results that agree so far."""
    awake = sum(1 for r in held if r.silent_for <= 0)
    lacking = quorum - agreeing - awake
    if lacking <= 0:
        return []
    asleep = sorted(r.id for r in held if r.silent_for >= silent_leases * lease and r.id not in covered)
    return asleep[:lacking]


def fate(*, now: float, lease_expires: float, deadline: float | None, host_alive: bool) -> str | None:
    """Why an active replica is lost now, or None while it is still awaited. Past its deadline it
    is lost wherever it is; its lease run out, only if its host is alive (it heartbeats without
    it: the worker restarted, or never received it); a silent host's replicas wait for it."""
    if now > (lease_expires if deadline is None else deadline):
        return DEADLINE_PASSED if deadline is not None else NOT_HELD
    if lease_expires < now and host_alive:
        return NOT_HELD
    return None


def may_take_extra(reputation: int, waited: float, lease: float) -> bool:
    """May a host take an extra replica wanted for ``waited`` seconds? Reliable hosts at once."""
    return reputation >= RELIABLE or waited >= lease
