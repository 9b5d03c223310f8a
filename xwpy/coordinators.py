"""Which coordinator to ask, for sites with several and no load balancer in front of them.

A site may run a leader and standbys on one catalog (``catalog/lease.py``): one serves, the others
answer 503 ``standby``. Workers and clients are given every coordinator's URL, comma-separated
(``https://a:8443,https://b:8443``: the same text in ``--url``, ``--coordinator``, ``XWPY_URL`` and
``Grid(url, ...)``), and move on by themselves: the worker's link and the client's connection keep
one :class:`Rotation` each. It stays with the coordinator that answered last; when that one cannot
be reached or says it is a standby, the next in the list is asked at once, each once per request —
and when all of them failed, the caller waits as it always did (``xwpy.backoff.Backoff``) and asks
again. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Iterable, Iterator
from urllib.parse import urlsplit

MAX_URLS = 16  # coordinators one list may name


class BadURL(ValueError):
    """What is wrong with a list of URLs, said of it: prefix it with where the list came from."""


def parse(urls: str | Iterable[str]) -> tuple[str, ...]:
    """The coordinators' URLs, in order, without a trailing slash and each once: from one text
    (comma-separated) or a sequence of them. Each must be ``https://host[:port]``."""
    items = urls.split(",") if isinstance(urls, str) else [u for text in urls for u in str(text).split(",")]
    out: list[str] = []
    for item in items:
        url = item.strip().rstrip("/")
        if not url:
            continue
        try:
            parts = urlsplit(url)
            port = parts.port  # raises ValueError when out of range or not a number
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme != "https" or not parts.hostname or port == 0 or parts.path:
            raise BadURL(f"must be https://host:port, got {url[:200]!r}")
        if url not in out:
            out.append(url)
    if not out:
        raise BadURL("must name a coordinator: https://host:port")
    if len(out) > MAX_URLS:
        raise BadURL(f"may name at most {MAX_URLS} coordinators, got {len(out)}")
    return tuple(out)


class Rotation:
    """The coordinator to ask now (:attr:`current`), and the ones to try after it.

    ``failed(url)`` moves on only if ``url`` is still the current one: requests in flight together
    that all fail on one coordinator move the rotation one step, not one step each (which would
    skip the good coordinator behind it)."""

    def __init__(self, urls: str | Iterable[str]):
        self.urls = parse(urls)
        self._at = 0

    @property
    def current(self) -> str:
        return self.urls[self._at]

    def failed(self, url: str) -> None:
        if url == self.current:
            self._at = (self._at + 1) % len(self.urls)

    def attempts(self) -> Iterator[str]:
        """The URLs one request tries, current first, each once, following the rotation: the
        caller reports each failure (:meth:`failed`) before taking the next, and stops at the
        first answer. A URL another request already moved past is not tried again."""
        tried: set[str] = set()
        while self.current not in tried:
            url = self.current
            tried.add(url)
            yield url

    def __len__(self) -> int:
        return len(self.urls)

    def __str__(self) -> str:
        return ",".join(self.urls)


__all__ = ["BadURL", "MAX_URLS", "Rotation", "parse"]
