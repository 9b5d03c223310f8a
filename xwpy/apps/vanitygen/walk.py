"""How the fast kernels walk a key range: batches around a centre point, and the exact slow path.

Offsets ``[0, count)`` of a unit are cut into batches of ``W = 2H + 1`` consecutive points. Batch
``b`` is built around its centre ``C_b = P_{bW + H}``: its points are ``C_b + jG`` for ``j`` in
``[-H, H]`` (offset ``bW + H + j``). ``C_b + jG`` and ``C_b - jG`` share the denominator
``x(jG) - x(C_b)``, so one batched inversion (Montgomery's trick) serves the whole batch, and the
next centre ``C_{b+1} = C_b + WG`` rides along in the same inversion.

A batch is *degenerate* when a denominator is zero: the centre is infinity or equals ``±jG``. That
only happens within ``H`` keys of scalar 0 (a range wrapping around N, or a split-key ``Q`` chosen
adversarially); the batch is then computed point by point with the general formulas here, so a
kernel's answer never depends on the batch layout.
"""

from __future__ import annotations

from functools import lru_cache

from xwpy.apps.vanitygen import secp256k1 as ec
from xwpy.apps.vanitygen.secp256k1 import Point


@lru_cache(maxsize=4)
def table(half: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """x and y of 1G .. HG, then of WG (W = 2H + 1)."""
    pts = []
    pt = ec.G
    for _ in range(half):
        pts.append(pt)
        pt = ec.add(pt, ec.G)
    pts.append(ec.mul(2 * half + 1))
    return tuple(p[0] for p in pts), tuple(p[1] for p in pts)


def point_at(start: int, offset: int, pubkey: Point = None) -> Point:
    """P_offset = (start + offset) G + Q, by the general formulas."""
    return ec.add(ec.mul(start + offset), pubkey)


def first_center(start: int, half: int, pubkey: Point = None) -> Point:
    return point_at(start, half, pubkey)


def slow_batch(center: Point, half: int, n_points: int) -> list[Point]:
    """Points at offsets 0 .. n_points-1 of a batch centred on ``center`` (None = infinity)."""
    tx, ty = table(half)
    out: list[Point] = []
    for o in range(n_points):
        j = o - half
        if j == 0:
            out.append(center)
        else:
            jg = (tx[abs(j) - 1], ty[abs(j) - 1])
            out.append(ec.add(center, jg if j > 0 else ec.neg(jg)))
    return out


def next_center(center: Point, half: int) -> Point:
    tx, ty = table(half)
    return ec.add(center, (tx[half], ty[half]))


def check_range(start: int, count: int) -> None:
    """Shared validation of a unit's range (start may be any scalar; the walk wraps mod N)."""
    if not 0 <= start < ec.N:
        raise ValueError(f"start must be a scalar in [0, N), got {start:#x}")
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
