"""What the dashboards long-poll: a counter bumped when the jobs change (submitted, final), and the
waiters it wakes. A page asks "has anything changed since version V?" and gets the answer once
something has, or after its wait: one request in flight per open page, however many jobs finish.

A change wakes the waiters ``settle`` seconds later, all together: the jobs that end meanwhile
wake each page once, and the pages woken together share their reads (:mod:`xwpy.server.fresh`).

Those reads count jobs over the whole catalog, and take longer as it grows (some 175 ms for
150,000 jobs with the catalog writing beside them): woken every second, a hundred pages cost a
busy coordinator 14 % of its CPU a replica (bench_dashboard). So a wake also waits until the reads
the previous one caused (:meth:`spent`) are at most 1/PACE of the time since: the pages refresh
every second while their reads are cheap, and less often as they grow dear, never at dispatch's
expense."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed

SETTLE_SECONDS = 1.0
PACE = 10  # wakes at least PACE times the seconds their reads took apart


class Feed:
    def __init__(self, reactor, settle: float = SETTLE_SECONDS, pace: float = PACE):
        self.reactor = reactor
        self.settle = settle
        self.pace = pace
        self.version = 0
        self._waiters: set[Deferred] = set()
        self._wake = None  # the call that wakes the waiters, while a change settles
        self._woke_at = float("-inf")
        self._spent = 0.0  # seconds of reads since the last wake (the pages it woke made them)

    def bump(self, *_ignored) -> None:
        """Something changed (the arguments of the dispatcher's listeners are ignored)."""
        self.version += 1
        if self._wake is None:
            self._wake = self.reactor.callLater(self.settle, self._wake_all)

    def spent(self, seconds: float) -> None:
        """A read made for the pages took ``seconds`` (:class:`xwpy.server.fresh.Fresh` says)."""
        self._spent += seconds

    def _wake_all(self) -> None:
        due = self._woke_at + self.pace * self._spent
        now = self.reactor.seconds()
        if now < due:  # the last wake's reads were dear: let the pages wait a little longer
            self._wake = self.reactor.callLater(due - now, self._wake_all)
            return
        self._wake = None
        self._woke_at, self._spent = now, 0.0
        waiters, self._waiters = self._waiters, set()
        for d in waiters:
            if not d.called:
                d.callback(self.version)

    def wait(self, after: int, timeout: float) -> Deferred:
        """Fires with the version: at once if it is not ``after`` (or ``timeout`` is 0) and no
        change is settling; else when the next change has settled, or after ``timeout`` seconds."""
        if (after != self.version or timeout <= 0) and self._wake is None:
            return succeed(self.version)
        d: Deferred = Deferred()
        self._waiters.add(d)

        def expire():
            if self._wake is not None:
                return  # a change is settling: its wake answers
            self._waiters.discard(d)
            if not d.called:
                d.callback(self.version)

        call = self.reactor.callLater(max(timeout, 0), expire)

        def done(result):
            if call.active():
                call.cancel()
            return result

        return d.addBoth(done)

    @property
    def waiting(self) -> int:
        return len(self._waiters)


__all__ = ["Feed", "PACE", "SETTLE_SECONDS"]
