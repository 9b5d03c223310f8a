"""The native kernel (C extension ``xwpy.apps.vanitygen._native``), when it was built.

The C code runs the fast batches; degenerate batches (see walk.py) come back here and go through
the exact slow path, after which the C walk resumes from the next centre. ``AVAILABLE`` is False
when the extension is absent (no compiler at install time); callers then use kernel.py.
"""

from __future__ import annotations

from functools import lru_cache

from xwpy.apps.vanitygen import kernel, walk
from xwpy.apps.vanitygen.candidates import Hit
from xwpy.apps.vanitygen.prefix import Target
from xwpy.apps.vanitygen.secp256k1 import Point

try:
    from xwpy.apps.vanitygen import _native
except ImportError:  # not built: pure-Python fallback
    _native = None

AVAILABLE = _native is not None
HALF = 1024  # batch of 2049 points: one field inversion (~10 us) per 12,294 candidates


def impls() -> list[str]:
    """Hash implementations the extension can use on this CPU, fastest first."""
    return list(_native.impls()) if _native is not None else []


@lru_cache(maxsize=4)
def _table_bytes(half: int) -> bytes:
    tx, ty = walk.table(half)
    return b"".join(x.to_bytes(32, "big") + y.to_bytes(32, "big") for x, y in zip(tx, ty))


def scan(
    target: Target,
    start: int,
    count: int,
    *,
    compressed: bool = True,
    pubkey: Point = None,
    limit: int = 1,
    half: int = HALF,
    impl: str | None = None,
) -> list[Hit]:
    """Same contract as kernel.scan; ``impl`` picks a hash implementation (default: fastest)."""
    if _native is None:
        raise RuntimeError("the native kernel is not built (python setup.py build_ext --inplace)")
    walk.check_range(start, count)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    table = _table_bytes(half)
    ranges = target.ranges_bytes()
    width = 2 * half + 1
    matcher = None
    center = walk.first_center(start, half, pubkey)
    hits: list[Hit] = []
    base = 0
    while base < count and len(hits) < limit:
        if center is not None:
            found, degenerate, c = _native.scan(
                center[0].to_bytes(32, "big"),
                center[1].to_bytes(32, "big"),
                count - base,
                table,
                half,
                compressed,
                ranges,
                limit - len(hits),
                impl,
            )
            hits += [Hit(base + o, cand) for o, cand in found]
            if degenerate < 0 or len(hits) >= limit:
                break
            base += degenerate
            center = (int.from_bytes(c[0], "big"), int.from_bytes(c[1], "big"))
        if matcher is None:
            matcher = kernel._Matcher(target)
        m = min(width, count - base)
        hits += kernel.scan_points(walk.slow_batch(center, half, m), base, matcher, compressed, limit - len(hits))
        center = walk.next_center(center, half)
        base += width
    return hits[:limit]
