"""Job graphs: a job runs after others and takes files of their certified results as inputs.
Pure functions, no I/O.

A child is held (PENDING, no replica wanted) while a job it runs after is not final; it becomes
ready once all of them are certified (COMPLETED); it is cancelled as soon as one ends otherwise
(ERROR, CANCELLED) — the inputs it waits for will never exist — and so, in turn, are its own
children: a failure ends exactly the failed job's descendants. Submissions are checked before any
of this: every parent named exists and is the submitter's, none has already failed, and the new
jobs form no cycle (:func:`cycle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from xwpy.lifecycle import JobStatus


@dataclass(frozen=True, slots=True)
class Step:
    """What becomes of a child: ``ready`` (every parent certified), ``end`` (the reason it is
    cancelled), or neither: held, waiting for ``waiting``."""

    ready: bool = False
    end: str | None = None
    waiting: tuple[int, ...] = ()


def decide(parents: Mapping[int, JobStatus]) -> Step:
    """A child's fate from its parents' statuses (those not named are certified)."""
    failed = sorted(p for p, s in parents.items() if s in (JobStatus.ERROR, JobStatus.CANCELLED))
    if failed:
        p = failed[0]
        how = "ended in ERROR" if parents[p] is JobStatus.ERROR else "was cancelled"
        return Step(end=f"job {p}, which it runs after, {how}")
    waiting = tuple(sorted(p for p, s in parents.items() if not s.final))
    return Step(waiting=waiting) if waiting else Step(ready=True)


def waiting_line(waiting: Sequence[int]) -> str:
    """What ``xwpy why`` says of a held job."""
    ids = ", ".join(str(p) for p in waiting[:8]) + (", ..." if len(waiting) > 8 else "")
    n = len(waiting)
    return f"waiting for {n} job{'' if n == 1 else 's'} it runs after to be certified: {ids}"


def cycle(edges: Sequence[Iterable[int]]) -> list[int] | None:
    """A cycle among nodes 0..n-1, where ``edges[i]`` are the nodes i runs after (as a list that
    starts and ends with the same node), or None. Iterative: deep chains do not recurse."""
    n = len(edges)
    state = [0] * n  # 0 unseen, 1 on the current path, 2 done
    for start in range(n):
        if state[start]:
            continue
        path = [start]
        its = [iter(edges[start])]
        state[start] = 1
        while its:
            nxt = next(its[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                its.pop()
                continue
            if state[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            if state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                its.append(iter(edges[nxt]))
    return None
