"""What a client's futures long-poll: "tell me when any of these jobs is final". One request in
flight per client however many jobs it follows (``POST /api/v1/jobs/wait``), woken when one of
them ends — ``settle`` seconds later, so that jobs ending together answer one request, not one
each."""

from __future__ import annotations

from typing import Iterable

from twisted.internet.defer import Deferred

SETTLE_SECONDS = 0.05


class Finals:
    def __init__(self, reactor, settle: float = SETTLE_SECONDS):
        self.reactor = reactor
        self.settle = settle
        self._waiters: dict[Deferred, frozenset[int]] = {}

    def ended(self, job_ids: Iterable[int]) -> None:
        """Jobs reached a final state (committed): wake, after the settle, whoever follows one."""
        ended = set(job_ids)
        for d, ids in list(self._waiters.items()):
            if not ids.isdisjoint(ended):
                del self._waiters[d]
                self.reactor.callLater(self.settle, _fire, d)

    def wait(self, job_ids: Iterable[int], timeout: float) -> Deferred:
        """Fires (with None) once one of ``job_ids`` is final and the settle has passed, or after
        ``timeout`` seconds. The caller checks which jobs are final: this only wakes it."""
        d: Deferred = Deferred()
        self._waiters[d] = frozenset(job_ids)

        def expire():
            if self._waiters.pop(d, None) is not None:
                _fire(d)

        call = self.reactor.callLater(max(timeout, 0), expire)
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d

    @property
    def waiting(self) -> int:
        return len(self._waiters)


def _fire(d: Deferred) -> None:
    if not d.called:
        d.callback(None)


__all__ = ["Finals", "SETTLE_SECONDS"]
