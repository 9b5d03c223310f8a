"""Delays between the retries of one operation: the one back-off every retry loop of xwpy uses.

Exponential, capped, with a little jitter so that many clients cut off together do not come back
together — Twisted's ``backoffPolicy`` (the one ``ClientService`` reconnects with), counted here.
"""

from __future__ import annotations

import random
from typing import Callable

from twisted.application.internet import backoffPolicy


class Backoff:
    def __init__(self, first: float = 0.5, cap: float = 30.0, *, factor: float = 2.0,
                 jitter: Callable[[], float] | None = None):
        # Jitter of up to a quarter of the first delay: enough to spread a herd, never a long wait.
        jitter = jitter if jitter is not None else (lambda: random.uniform(0, first / 4))
        self._policy = backoffPolicy(initialDelay=first, maxDelay=cap, factor=factor, jitter=jitter)
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt (each call counts one more failure)."""
        delay = self._policy(self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """The operation succeeded: the next failure starts from the first delay again."""
        self.attempts = 0
