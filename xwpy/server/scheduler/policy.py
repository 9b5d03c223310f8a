"""Which host may run which job, and whose job goes next. Pure functions, no I/O.

- A host never gets two replicas of one job, and — while the pool of volunteers allows — never a
  replica of a job that another host of the same volunteer already ran, so one person running many
  hosts cannot outvote the others.
- A host gets only jobs it may read and whose memory limit fits.
- Fair share: the owner with the fewest replicas running goes first; oldest job first within.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


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


PUBLIC = Visibility("public")


@dataclass(frozen=True, slots=True)
class HostView:
    id: int
    owner_id: int
    group: str
    memory: int


def eligible(
    *,
    host: HostView,
    visibility: Visibility,
    memory_needed: int,
    hosts_used: Iterable[int],
    owners_used: set[int] | frozenset[int],
    pool_owners: int,
) -> bool:
    if host.id in hosts_used:
        return False
    if memory_needed and host.memory and memory_needed > host.memory:
        return False
    if not visibility.admits(host.owner_id, host.group):
        return False
    # Another volunteer could still take it: keep volunteers distinct.
    if host.owner_id in owners_used and pool_owners > len(owners_used):
        return False
    return True


def fair_order(running_by_owner: dict[int, int], owners: Iterable[int]) -> list[int]:
    """Owners with ready work, the least served first (ties by id, for determinism)."""
    return sorted(owners, key=lambda o: (running_by_owner.get(o, 0), o))
