"""The end-to-end tests' grid: :class:`xwpy.localgrid.LocalGrid` with a fast heartbeat, whose
waits fail the test (AssertionError) rather than raise TimeoutError."""

from __future__ import annotations

from dataclasses import dataclass

from xwpy import localgrid
from xwpy.localgrid import Proc, free_port  # noqa: F401 - re-exported for the tests


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    try:
        return localgrid.wait_for(predicate, timeout, what, interval)
    except TimeoutError as e:
        raise AssertionError(str(e)) from None


def liar(mode: str) -> tuple[str, ...]:
    """``start_worker(..., launcher=liar(mode))``: a Byzantine worker (:mod:`tests.liar`)."""
    return ("tests.liar", mode)


@dataclass
class Grid(localgrid.LocalGrid):
    heartbeat: float = 0.2

    def wait_final(self, client, ids, timeout: float = 60):
        try:
            return super().wait_final(client, ids, timeout)
        except TimeoutError as e:
            raise AssertionError(str(e)) from None
