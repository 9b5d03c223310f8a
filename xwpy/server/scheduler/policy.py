"""Which host may run which job, and whose job goes next. Pure functions, no I/O.

- A host never holds two replicas of one job, nor gets one of a job it already gave a result for.
  A replica that FAILED, was LOST or ABORTED gave no result: its host may take the job again
  (else a failed job on a one-host site would never be retried; its retries are bounded by the
  job's ``max_errors``).
- While the pool of volunteers allows, a host never gets a replica of a job that another host of
  the same volunteer already runs or ran, so one person running many hosts cannot outvote the
  others. When every volunteer alive who may run the job already has (``pool_owners <=
  len(owners_used)``), the rule is relaxed: distinct *hosts* are then all that is asked.
- A host gets only jobs whose memory limit fits, for which it has a version of the app (its
  platform's, or one for any), and that its visibility admits; and only while the cores and
  memory of the replicas it runs, summed, leave room for the job's (:mod:`capacity`). Jobs are submitted
  visible to every host (``PUBLIC``): data a job may read is not data other users may list. A host
  may download only the inputs of the replicas it holds, and users' access to data is checked in
  the data API, unchanged. (Narrower visibilities remain for jobs stored by earlier versions.)
- Whose job goes next: weighted fair share between owners (:mod:`shares`); within an owner's
  jobs, the highest priority first, then the oldest.

**When a job ends because no quorum is possible.** ``quorum`` agreeing results must come from
distinct hosts. A job that has been tried (at least one replica finished), has no replica running,
still wants replicas, and that *no host alive may take* (:func:`refusal` refuses every one) is
*stuck*. If it stays stuck for ``patience`` seconds (``[scheduler] no_quorum_seconds``, 5 minutes
by default: time for a restarting worker to come back, or for the workers of a site that is
starting to register), it ends in ERROR with the reason (:func:`no_quorum_reason`):
e.g. replication 3 on a one-host site, or three disagreeing results on a three-host site. Any
replica dispatched meanwhile, or a host joining that may take it, ends the wait (and a restarted
coordinator counts again from its start: the countdown is not stored). A job never tried
(a site with no worker alive) waits, and says why (``xwpy status``), but never ends by this rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from xwpy.server.scheduler import capacity


@dataclass(frozen=True, slots=True)
class Visibility:
    """Who may run a job: everyone, one user's hosts, or the hosts of a group's members."""

    scope: str  # "public" | "owner" | "group"
    owner_id: int = 0
    group: str = ""

    def admits(self, host_owner_id: int, host_group: str) -> bool:
        if self.scope == "public":
            return True
        if self.scope == "owner":
            return host_owner_id == self.owner_id
        return bool(self.group) and host_group == self.group

    @classmethod
    def of_row(cls, scope: str, owner_id: int, group: str) -> "Visibility":
        """As a job's row keeps it (its owner and group always): the owner counts only for "owner",
        the group only for "group" — so a public job rebuilt is PUBLIC again, as it was submitted."""
        return cls(scope, owner_id if scope == "owner" else 0, group if scope == "group" else "")


PUBLIC = Visibility("public")


@dataclass(frozen=True, slots=True)
class HostView:
    id: int
    owner_id: int
    group: str
    memory: int
    offer: capacity.Offer | None = None  # None: an offer of `memory` only (no core or platform check)


# Refusal reasons (stable strings: :mod:`why` groups hosts by them).
RAN_IT = "has already run it"
TOO_SMALL = "has too little memory"
FEW_CORES = "has too few cores"
NO_VERSION = "has no version of its app for its platform"
NO_NETWORK = "gives no network to jobs"
NO_DISK = "has too small a disk budget for its inputs"
NOT_ADMITTED = "may not read its inputs"
SAME_VOLUNTEER = "its volunteer already runs or ran it"
OTHER_CLASS = "is of another platform than its replicas (homogeneous redundancy)"


def refusal(
    *,
    host: HostView,
    visibility: Visibility,
    memory_needed: int,
    hosts_used: Iterable[int],
    owners_used: set[int] | frozenset[int],
    pool_owners: int,
    need: capacity.Need | None = None,
    platform_class: str | None = None,
) -> str | None:
    """Why this host may not take a replica of this job, or None when it may (when it is idle:
    whether it has room beside what it runs is :func:`capacity.fits`, a wait, not a refusal)."""
    if host.id in hosts_used:
        return RAN_IT
    if memory_needed and host.memory and memory_needed > host.memory:
        return TOO_SMALL
    if need is not None and host.offer is not None:
        lack = capacity.lacking(host.offer, need)
        if lack is not None:
            return {capacity.VERSION: NO_VERSION, capacity.CORES: FEW_CORES, capacity.MEMORY: TOO_SMALL,
                    capacity.NETWORK: NO_NETWORK, capacity.DISK: NO_DISK}[lack]
    if not visibility.admits(host.owner_id, host.group):
        return NOT_ADMITTED
    # Homogeneous redundancy: a job's replicas run on hosts of one platform, the first one's.
    if platform_class is not None and (host.offer is None or host.offer.platform != platform_class):
        return OTHER_CLASS
    # Another volunteer could still take it: keep volunteers distinct.
    if host.owner_id in owners_used and pool_owners > len(owners_used):
        return SAME_VOLUNTEER
    return None


def eligible(**kw) -> bool:
    return refusal(**kw) is None


def no_quorum_reason(*, quorum: int, digests: list[str], failed: int, hosts_alive: int) -> str:
    """The ERROR message of a job that no host alive may take any more (see the module docstring)."""
    counts = Counter(digests)
    best = max(counts.values(), default=0)
    if len(counts) > 1:
        what = f"{len(digests)} results disagree ({len(counts)} digests, best agreement {best} of {quorum})"
    elif digests:
        what = f"{best} agreeing result{'s' if best != 1 else ''} of {quorum} needed"
    else:
        what = f"no result ({failed} failed)"
    return (
        f"no quorum possible: {what}, and none of the {hosts_alive} host{'s' if hosts_alive != 1 else ''} "
        f"alive may run another replica (quorum needs distinct hosts)"
    )
