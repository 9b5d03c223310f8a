"""Difficulty of a prefix: expected tries, probability of success after N tries, time estimates.

Each key tried is an independent trial with success probability ``p = Target.probability`` (exact,
from the matching ranges), so the number of tries is geometric: the expectation is ``1/p`` and
after ``t`` tries the search has succeeded with probability ``1 - (1 - p)**t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from xwpy.apps.vanitygen.prefix import Target


def expected_tries(target: Target) -> float:
    return float(1 / target.probability)


def _log1m(p: float) -> float:
    return math.log1p(-p)


def probability_after(p: float | Fraction, tries: float) -> float:
    """Probability of at least one match within ``tries`` keys."""
    p = float(p)
    if tries <= 0 or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return -math.expm1(tries * _log1m(p))


def tries_for(p: float | Fraction, probability: float) -> float:
    """Keys to try for a given probability of success (e.g. 0.5 for the median)."""
    if not 0 <= probability < 1:
        raise ValueError(f"probability must be in [0, 1), got {probability}")
    p = float(p)
    if p <= 0:
        return math.inf
    if p >= 1:
        return 1.0 if probability > 0 else 0.0
    return _log1m(probability) / _log1m(p)


@dataclass(frozen=True)
class Estimate:
    prefix: str
    icase: bool
    probability: float  # per key
    expected_tries: float
    tries_50: float
    tries_90: float
    tries_99: float

    def seconds(self, tries: float, keys_per_second: float) -> float:
        if keys_per_second <= 0:
            raise ValueError(f"keys per second must be positive, got {keys_per_second}")
        return tries / keys_per_second


def estimate(target: Target) -> Estimate:
    p = target.probability
    return Estimate(
        prefix=target.prefix,
        icase=target.icase,
        probability=float(p),
        expected_tries=expected_tries(target),
        tries_50=tries_for(p, 0.5),
        tries_90=tries_for(p, 0.9),
        tries_99=tries_for(p, 0.99),
    )


def format_duration(seconds: float) -> str:
    """Human-readable duration, from seconds to years (the age of the universe is ~4e17 s)."""
    if math.isinf(seconds) or seconds > 1e18:
        return "forever"
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"
