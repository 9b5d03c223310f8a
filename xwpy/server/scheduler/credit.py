"""Credit: what a volunteer's host earns for the work it certified.

Workers report neither their CPU time nor a benchmark, so credit is counted in the one unit the
coordinator measures itself: **run seconds**, from a replica's assignment to its result (a host's
own clock is never asked). Only the replicas whose result certified the job (VALID) earn, and each
earns the same: the *least* run time among them (BOINC's granted credit is the lowest claim of the
quorum): a host that sat on its work, or a slow one, cannot earn more than an honest fast one for
the same job; a result outvoted, failed, lost or aborted earns nothing.
"""

from __future__ import annotations

from typing import Iterable, Mapping

# Credit is kept to the millisecond: sums stay exact enough to split a pool's share by (payouts).
PRECISION = 3


def claim(assigned_at: float, finished_at: float) -> float:
    """A replica's run seconds as the coordinator saw them (never negative: clocks may step)."""
    return round(max(0.0, finished_at - assigned_at), PRECISION)


def grant(claims: Mapping[int, float], valid: Iterable[int]) -> dict[int, float]:
    """The credit of each replica that certified a job: replica id -> credit (the others earn
    nothing and are absent). ``claims`` holds the run seconds of (at least) the valid replicas."""
    valid = [rid for rid in valid if rid in claims]
    if not valid:
        return {}
    granted = min(claims[rid] for rid in valid)
    return {rid: granted for rid in valid}
