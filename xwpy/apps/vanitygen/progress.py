"""Text rendering of a search's progress and of quantities (pure functions, no I/O)."""

from __future__ import annotations

import math

from xwpy.apps.vanitygen.difficulty import format_duration, tries_for
from xwpy.apps.vanitygen.search import Progress


def human(n: float) -> str:
    """1234567 -> '1.23M' (keys, rates)."""
    if not math.isfinite(n):
        return "inf"
    for unit, size in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}" if n != int(n) else str(int(n))


def bar(fraction: float, width: int = 24) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(fraction * width)
    return "#" * full + "-" * (width - full)


def render(progress: Progress, elapsed: float) -> str:
    """One status line: probability bar, keys tried, rate, time to 50 % at the current rate."""
    rate = progress.keys_tried / elapsed if elapsed > 0 else 0.0
    p = 1 / progress.expected_tries
    line = (
        f"[{bar(progress.probability)}] {human(progress.keys_tried)} keys, "
        f"{human(rate)} keys/s, P={progress.probability:.1%}"
    )
    if rate > 0 and progress.probability < 0.5:
        line += f", 50% in {format_duration((tries_for(p, 0.5) - progress.keys_tried) / rate)}"
    return line
