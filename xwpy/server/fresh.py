"""Costly reads shared between the dashboards: a hundred pages woken by the same change cost one
count of the jobs table, not a hundred.

Each answer is stamped with the feed's version (:class:`xwpy.server.feed.Feed`) when its read
began. A caller says which version it has seen (the one the feed woke it with); an answer stamped
with that version or a later one saw every change the caller knows of, and serves it — kept (for
at most ``max_age`` seconds: what no feed change announces, a host going quiet, still shows), or
still being read. Otherwise a new read begins. Answers are shared: callers must not change them."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Hashable

from twisted.internet.defer import Deferred

MAX_AGE = 5.0  # seconds
KEEP_AT_MOST = 1024  # keys (one per owner and query): past that, the oldest answers are dropped


class Fresh:
    def __init__(self, feed, max_age: float = MAX_AGE, on_read: Callable[[float], None] | None = None):
        self.feed = feed
        self.max_age = max_age
        self._on_read = on_read  # told the seconds each read took (the feed paces its wakes by them)
        self._kept: dict[Hashable, tuple[int, float, Any]] = {}
        self._reading: dict[Hashable, tuple[int, list[Deferred]]] = {}

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Any]], seen: int) -> Any:
        seen = min(seen, self.feed.version)  # a version from the future is the present
        now = self.feed.reactor.seconds()
        kept = self._kept.get(key)
        if kept is not None and kept[0] >= seen and now - kept[1] < self.max_age:
            return kept[2]
        reading = self._reading.get(key)
        if reading is not None and reading[0] >= seen:
            d: Deferred = Deferred()
            reading[1].append(d)
            return await d
        version, waiters = self.feed.version, []
        self._reading[key] = (version, waiters)  # (an older read still in flight serves its own callers)
        started = self.feed.reactor.seconds()
        try:
            result = await read()
        except BaseException as e:
            self._done(key, waiters)
            for d in waiters:
                d.errback(e)
            raise
        self._done(key, waiters)
        if self._on_read is not None:
            self._on_read(self.feed.reactor.seconds() - started)
        old = self._kept.get(key)
        if old is None or old[0] <= version:
            self._kept[key] = (version, now, result)
            if len(self._kept) > KEEP_AT_MOST:
                for k in sorted(self._kept, key=lambda k: self._kept[k][0])[: len(self._kept) // 2]:
                    del self._kept[k]
        for d in waiters:
            d.callback(result)
        return result

    def _done(self, key, waiters) -> None:
        reading = self._reading.get(key)
        if reading is not None and reading[1] is waiters:
            del self._reading[key]


__all__ = ["Fresh", "MAX_AGE"]
