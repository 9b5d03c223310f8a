"""Whose job goes next: weighted fair share between users, with decayed usage (pure, no I/O).

Each user has a *share* (``[shares]`` in the site's configuration, ``login = 3``; others
``[scheduler] default_share``). Their *recent usage* is HTCondor's real user priority: the
exponentially decayed average of the slots (replicas) they have held, with a half-life
(``[scheduler] usage_half_life_seconds``): a user holding ``r`` slots for long has recent usage
``r``; a user who stops sees it halve every half-life.

When a slot is free, the users with work ready are ordered by ``(running + recent) / share``,
lowest first (ties: fewer running, then the lower user id). ``running`` moves at once when a slot is
given (so one request for several slots spreads them), ``recent`` remembers who has been served
lately (so a user who ran the grid alone all night waits behind one who just arrived). On a
saturated grid the slots held, hence the throughputs of jobs of equal length, settle in the ratio
of the shares; on an idle one anyone's work runs at once (fair share orders, it never idles a slot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

DEFAULT_HALF_LIFE = 86400.0  # seconds: HTCondor's PRIORITY_HALFLIFE


@dataclass(frozen=True, slots=True)
class Usage:
    """A user's recent usage (slots, decayed average) as of ``at`` (seconds)."""

    recent: float = 0.0
    at: float = 0.0


def decayed(u: Usage, running: int, now: float, half_life: float) -> Usage:
    """The usage at ``now`` of a user who held ``running`` slots since ``u.at``: the average moves
    toward ``running``, half of the way each half-life (``half_life <= 0``: no memory at all)."""
    if now <= u.at:
        return u
    if half_life <= 0:
        return Usage(float(running), now)
    k = math.exp2(-(now - u.at) / half_life)
    return Usage(running + (u.recent - running) * k, now)


def key(running: int, recent: float, share: float) -> tuple[float, int]:
    """A user's place in the order (lower first)."""
    return ((running + recent) / share, running)


def order(owners: Iterable[int], running: Mapping[int, int], recent: Mapping[int, float],
          share: Callable[[int], float]) -> list[int]:
    """The users with ready work, the least served for their share first (ties by id)."""
    return sorted(owners, key=lambda o: (*key(running.get(o, 0), recent.get(o, 0.0), share(o)), o))


def check_share(share: float) -> float:
    if not (share > 0 and math.isfinite(share)):
        raise ValueError(f"a share must be a positive number, not {share!r}")
    return float(share)


__all__ = ["DEFAULT_HALF_LIFE", "Usage", "check_share", "decayed", "key", "order"]
