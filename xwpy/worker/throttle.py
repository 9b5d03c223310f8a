"""Bandwidth caps and transfer windows: the decisions, without I/O or a clock of their own.

:class:`TokenBucket` says how long to wait before more bytes may move so that a transfer averages
at most its cap; :class:`TransferPolicy` gathers what a volunteer set for transfers (caps, the
time windows in which they may run, how long a transfer may go without moving a byte). The
transfers (:mod:`xwpy.worker.transfer`) ask them with the reactor's time, which tests replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

MIN_BURST = 16 << 10  # bytes: a cap's smallest burst (a few TLS records)


class TokenBucket:
    """At most ``rate`` bytes/s on average. It starts empty (no burst at the start of a transfer)
    and saves at most ``burst`` bytes of unused allowance (a second's worth by default): a sleep
    that overruns, or a round trip between two chunks, shorter than that loses no throughput."""

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0):
        if rate <= 0:
            raise ValueError("a cap must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(rate, MIN_BURST))
        self.tokens = 0.0
        self.stamp = now

    def take(self, n: int, now: float) -> float:
        """Count ``n`` bytes as moved at ``now``; the seconds to wait before moving more."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(frozen=True)
class TransferPolicy:
    """What a volunteer allows transfers (the worker's preferences fill it)."""

    download_rate: float = 0.0  # bytes/s; 0: no cap
    upload_rate: float = 0.0
    # Seconds before transfers may run at this time (epoch s; 0: now), by the volunteer's transfer
    # windows (xwpy.worker.prefs.transfer_wait). None: always.
    wait: Callable[[float], float] | None = None
    stall_seconds: float = 60.0  # a transfer that moves no byte this long is cut off and resumed
    window_poll_seconds: float = 60.0  # a closed window is looked at again at least this often

    def bucket(self, rate: float, now: float) -> TokenBucket | None:
        return TokenBucket(rate, now=now) if rate > 0 else None

    def closed_for(self, now: float) -> float:
        """Seconds until transfers may run (0: they may now)."""
        return max(0.0, float(self.wait(now))) if self.wait is not None else 0.0

    def open(self, now: float) -> bool:
        return self.closed_for(now) == 0.0


__all__ = ["MIN_BURST", "TokenBucket", "TransferPolicy"]
