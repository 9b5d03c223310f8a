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
"""

from __future__ import annotations

import math
import re
from typing import Callable, Mapping

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


def numeric(a: Files, b: Files, params: Mapping[str, float]) -> bool:
    """The same files, each the same text around numbers equal within ``rtol``/``atol``: JSON, CSV
    and plain text outputs alike (1.0 and 1.00000000001 agree; 1.0 and 1 too, being numbers)."""
    rtol = float(params.get("rtol", DEFAULT_RTOL))
    atol = float(params.get("atol", DEFAULT_ATOL))
    if set(a) != set(b):
        return False
    for name, x in a.items():
        y = b[name]
        if x == y:
            continue
        tx, nx = _tokens(x)
        ty, ny = _tokens(y)
        if len(nx) != len(ny) or [t.strip() for t in tx] != [t.strip() for t in ty]:
            return False
        if not all(close(p, q, rtol, atol) for p, q in zip(nx, ny)):
            return False
    return True
