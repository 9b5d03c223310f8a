"""Result comparators: whether two results of one job are equivalent, for apps whose honest
replicas need not agree bit for bit (floating point that depends on the CPU).

An app registered with ``--comparator NAME`` has its results compared by the function registered
under NAME in the ``xwpy.comparators`` entry-point group (or in ``BUILTIN``), as verifiers are
(:mod:`xwpy.verify`). A comparator sees the files of two result archives and the app's parameters
(``rtol``, ``atol``); it must be pure and fast (it runs on the coordinator, off the reactor
thread). It need not be an equivalence: the quorum (:func:`xwpy.server.scheduler.quorum.decide`)
counts, for each result, the results equivalent to it, and certifies one of them — the canonical
result — only with ``quorum`` results each equivalent to that one.

Without a comparator, results are equivalent when their archives are identical (bitwise).

A comparator may also parse each result once, not once per pair compared: then it has a
``prepare(files, params)`` method, whose answer its ``prepared(a, b, params)`` method compares
(``numeric`` does: a job's k-th result is compared with the k-1 earlier ones, each read and parsed
once while :class:`Prepared` keeps it). One that says ``symmetric = True`` is asked one way round.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Mapping

from xwpy import plugins

Files = Mapping[str, bytes]
Comparator = Callable[[Files, Files, Mapping[str, float]], bool]

BUILTIN: dict[str, str] = {
    "numeric": "xwpy.compare:numeric",
}

DEFAULT_RTOL = 1e-9
DEFAULT_ATOL = 0.0

# A number as JSON, CSV and text write it (Python's float('...') reads every one).
_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf|infinity)\b", re.I)


class UnknownComparator(LookupError):
    pass


def prepare(compare: Comparator, files: Files, params: Mapping[str, float]) -> Any:
    """A result as ``compare`` compares it: parsed once when it can be, else its files."""
    step = getattr(compare, "prepare", None)
    return files if step is None else step(files, params)


def equivalent(compare: Comparator, a: Any, b: Any, params: Mapping[str, float]) -> bool:
    """Whether two results (as :func:`prepare` made them) are equivalent, both ways round unless
    the comparator says it is symmetric."""
    same = getattr(compare, "prepared", compare)
    return same(a, b, params) and (getattr(compare, "symmetric", False) or same(b, a, params))


class Prepared:
    """Results as their comparators prepared them, by (comparator, parameters, digest): a result
    never changes, so each is read and parsed once while it is kept. Bounded by the results' sizes
    (the least recently used go first); safe from the catalog's reader threads."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], tuple[Any, int]]) -> Any:
        """The prepared result under ``key``, else ``make()``'s (value, size), kept if it fits."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        value, size = make()  # (outside the lock: reading and parsing take the time)
        if size > self.max_bytes:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, gone) = self._items.popitem(last=False)
                    self._bytes -= gone
        return value

    def __len__(self) -> int:
        return len(self._items)


def load_comparator(name: str) -> Comparator:
    return plugins.load("xwpy.comparators", BUILTIN, name, UnknownComparator)


def known_comparators() -> set[str]:
    return plugins.known("xwpy.comparators", BUILTIN)


def close(x: float, y: float, rtol: float, atol: float) -> bool:
    """Equal within ``atol + rtol * max(|x|, |y|)`` (symmetric); NaN equals NaN, infinities themselves."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= atol + rtol * max(abs(x), abs(y))


def _tokens(data: bytes) -> tuple[list[bytes], list[float]]:
    """The text between numbers, and the numbers."""
    text, numbers, at = [], [], 0
    for m in _NUMBER.finditer(data):
        text.append(data[at:m.start()])
        numbers.append(float(m.group()))
        at = m.end()
    text.append(data[at:])
    return text, numbers


class _Text:
    """One file of a result, its numbers parsed when first needed (identical files never are)."""

    __slots__ = ("raw", "_parsed")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._parsed: tuple[list[bytes], list[float]] | None = None

    @property
    def parsed(self) -> tuple[list[bytes], list[float]]:
        if self._parsed is None:
            text, numbers = _tokens(self.raw)
            self._parsed = [t.strip() for t in text], numbers
        return self._parsed


class Numeric:
    """The same files, each the same text around numbers equal within ``rtol``/``atol``: JSON, CSV
    and plain text outputs alike (1.0 and 1.00000000001 agree; 1.0 and 1 too, being numbers)."""

    symmetric = True  # (close() is)

    def __call__(self, a: Files, b: Files, params: Mapping[str, float]) -> bool:
        return self.prepared(self.prepare(a, params), self.prepare(b, params), params)

    @staticmethod
    def prepare(files: Files, params: Mapping[str, float]) -> dict[str, _Text]:
        return {name: _Text(raw) for name, raw in files.items()}

    @staticmethod
    def prepared(a: Mapping[str, _Text], b: Mapping[str, _Text], params: Mapping[str, float]) -> bool:
        rtol = float(params.get("rtol", DEFAULT_RTOL))
        atol = float(params.get("atol", DEFAULT_ATOL))
        if a.keys() != b.keys():
            return False
        for name, x in a.items():
            y = b[name]
            if x.raw == y.raw:
                continue
            tx, nx = x.parsed
            ty, ny = y.parsed
            if len(nx) != len(ny) or tx != ty:
                return False
            if not all(close(p, q, rtol, atol) for p, q in zip(nx, ny)):
                return False
        return True


numeric = Numeric()
