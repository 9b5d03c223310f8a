"""One run at a time per key: callers that ask while it runs share its outcome instead of
starting their own (a worker's slots staging the same input, a submission resent while the first
copy is still being committed)."""

from __future__ import annotations

from typing import Awaitable, Callable, Hashable, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


class SingleFlight:
    def __init__(self) -> None:
        self._waiting: dict[Hashable, list[Deferred]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        if key in self._waiting:
            d: Deferred = Deferred()
            self._waiting[key].append(d)
            return await d
        self._waiting[key] = waiters = []
        try:
            result = await work()
        except BaseException as e:
            del self._waiting[key]
            for d in waiters:
                d.errback(e)
            raise
        del self._waiting[key]
        for d in waiters:
            d.callback(result)
        return result
