"""The pure-Python search kernel: batched affine walk, six candidates per point, integer tests.

Per point: about 5.5 modular multiplications (1.5 for its share of the batched inversion, 3 for
the addition, 1 for beta * x; beta^2 * x = -x - beta * x is free), then per candidate one SHA-256
and one RIPEMD-160 of an SEC1 encoding built with ``int.to_bytes``, and a comparison of the 20-byte
digest with the target's hash160 bounds (bytes compare like big-endian integers). Only a digest
inside the bounds is checked exactly (checksum included), so base58 never appears here.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from xwpy.apps.vanitygen import walk
from xwpy.apps.vanitygen.candidates import PER_POINT, Hit
from xwpy.apps.vanitygen.hashing import fast_sha256, ripemd160_factory
from xwpy.apps.vanitygen.prefix import Target
from xwpy.apps.vanitygen.secp256k1 import BETA, P, Point

HALF = 256  # batch of 513 points; the inversion (~15 us) then costs ~0.03 us per point

_Y_PREFIX = ((b"\x02", b"\x03"), (b"\x03", b"\x02"))  # by parity of y: (P, -P)


def _mulmod(a: int, b: int) -> int:
    return a * b % P


def _fast_batch(xc: int, yc: int, tx, ty, half: int):
    """Points of a batch in offset order and the next centre; None if the batch is degenerate."""
    ds = [x - xc for x in tx]
    prods = list(accumulate(ds, _mulmod))
    if prods[-1] % P == 0:
        return None
    inv = pow(prods[-1], -1, P)
    invs = [0] * (half + 1)
    for i in range(half, 0, -1):
        invs[i] = inv * prods[i - 1] % P
        inv = inv * ds[i] % P
    invs[0] = inv
    px, py, mx, my = [], [], [], []
    for i in range(half):
        x2 = tx[i]
        y2 = ty[i]
        iv = invs[i]
        lam = (y2 - yc) * iv % P
        x3 = (lam * lam - xc - x2) % P
        px.append(x3)
        py.append((lam * (xc - x3) - yc) % P)
        lam = (-y2 - yc) * iv % P
        x3 = (lam * lam - xc - x2) % P
        mx.append(x3)
        my.append((lam * (xc - x3) - yc) % P)
    lam = (ty[half] - yc) * invs[half] % P
    nx = (lam * lam - xc - tx[half]) % P
    ny = (lam * (xc - nx) - yc) % P
    mx.reverse()
    my.reverse()
    mx.append(xc)
    my.append(yc)
    return mx + px, my + py, (nx, ny)


def _encodings(xs, ys, compressed: bool) -> list[bytes]:
    """The six candidate public keys of each point, in candidate order."""
    out: list[bytes] = []
    ext = out.extend
    if compressed:
        for x, y in zip(xs, ys):
            bx = x * BETA % P
            b2x = P - x - bx
            if b2x < 0:
                b2x += P
            t0, t1 = _Y_PREFIX[y & 1]
            xb = x.to_bytes(32, "big")
            bb = bx.to_bytes(32, "big")
            b2 = b2x.to_bytes(32, "big")
            ext((t0 + xb, t1 + xb, t0 + bb, t1 + bb, t0 + b2, t1 + b2))
    else:
        for x, y in zip(xs, ys):
            bx = x * BETA % P
            b2x = P - x - bx
            if b2x < 0:
                b2x += P
            yb = y.to_bytes(32, "big")
            nb = (P - y).to_bytes(32, "big")
            xb = b"\x04" + x.to_bytes(32, "big")
            bb = b"\x04" + bx.to_bytes(32, "big")
            b2 = b"\x04" + b2x.to_bytes(32, "big")
            ext((xb + yb, xb + nb, bb + yb, bb + nb, b2 + yb, b2 + nb))
    return out


class _Matcher:
    """Scans candidate encodings; only digests within the hash160 bounds get the exact check."""

    def __init__(self, target: Target, force_pure_ripemd: bool = False) -> None:
        self.target = target
        self.rmd = ripemd160_factory(force_pure_ripemd)
        self.los = [lo for lo, _ in target.h160_bounds]
        self.his = [hi for _, hi in target.h160_bounds]

    def scan(self, pubs: list[bytes], limit: int) -> list[int]:
        """Indexes (in order) of the matching encodings, at most ``limit`` of them."""
        sha = fast_sha256
        rmd = self.rmd
        exact = self.target.matches_hash160
        found: list[int] = []
        if len(self.los) == 1:
            lo, hi = self.los[0], self.his[0]
            for i, pub in enumerate(pubs):
                r = rmd()
                r.update(sha(pub).digest())
                d = r.digest()
                if lo <= d <= hi and exact(d):
                    found.append(i)
                    if len(found) >= limit:
                        break
        else:
            los, his = self.los, self.his
            first, last = los[0], his[-1]
            for i, pub in enumerate(pubs):
                r = rmd()
                r.update(sha(pub).digest())
                d = r.digest()
                if first <= d <= last:
                    k = bisect_right(los, d) - 1
                    if d <= his[k] and exact(d):
                        found.append(i)
                        if len(found) >= limit:
                            break
        return found


def scan_points(
    points: list[Point], base: int, matcher: _Matcher, compressed: bool, limit: int
) -> list[Hit]:
    """Slow-path scan of explicit points (None = infinity, which has no address and is skipped)."""
    hits: list[Hit] = []
    for o, pt in enumerate(points):
        if pt is None:
            continue
        for idx in matcher.scan(_encodings([pt[0]], [pt[1]], compressed), limit - len(hits)):
            hits.append(Hit(base + o, idx))
        if len(hits) >= limit:
            break
    return hits


def scan(
    target: Target,
    start: int,
    count: int,
    *,
    compressed: bool = True,
    pubkey: Point = None,
    limit: int = 1,
    half: int = HALF,
    force_pure_ripemd: bool = False,
) -> list[Hit]:
    """The first ``limit`` matches, by (offset, candidate), among offsets [0, count)."""
    walk.check_range(start, count)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    tx, ty = walk.table(half)
    width = 2 * half + 1
    matcher = _Matcher(target, force_pure_ripemd)
    center = walk.first_center(start, half, pubkey)
    hits: list[Hit] = []
    for base in range(0, count, width):
        m = min(width, count - base)
        batch = None if center is None else _fast_batch(center[0], center[1], tx, ty, half)
        if batch is None:
            hits += scan_points(walk.slow_batch(center, half, m), base, matcher, compressed, limit - len(hits))
            center = walk.next_center(center, half)
        else:
            xs, ys, center = batch
            for i in matcher.scan(_encodings(xs[:m], ys[:m], compressed), limit - len(hits)):
                hits.append(Hit(base + i // PER_POINT, i % PER_POINT))
        if len(hits) >= limit:
            break
    return hits

