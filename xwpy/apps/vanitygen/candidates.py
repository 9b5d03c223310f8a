"""The six candidate keys of each point, in the fixed order every kernel uses.

A work unit walks points ``P_i = (start + i) * G + Q`` for offsets ``i`` in ``[0, count)`` (``Q`` is
the requester's public key in split-key mode, absent otherwise). Two cheap symmetries turn each
point into six points whose addresses are all tried:

=====  ==========  ================  ===================================
index  point       coordinates       private key (k = scalar of P)
=====  ==========  ================  ===================================
0      P           (x, y)            k
1      -P          (x, -y)           -k
2      lambda P    (beta x, y)       lambda k
3      -lambda P   (beta x, -y)      -lambda k
4      lambda^2 P  (beta^2 x, y)     lambda^2 k
5      -lambda^2 P (beta^2 x, -y)    -lambda^2 k
=====  ==========  ================  ===================================

(all mod N for keys, mod P for coordinates). Index ``c`` is ``2 * lambda_power + negate``. A unit's
result is its lowest ``(offset, index)`` match, which every kernel must agree on.
"""

from __future__ import annotations

from typing import NamedTuple

from xwpy.apps.vanitygen.secp256k1 import BETA, LAMBDA, N, P, Point

PER_POINT = 6


class Hit(NamedTuple):
    offset: int
    candidate: int


def lambda_power(candidate: int) -> int:
    return candidate >> 1


def negated(candidate: int) -> bool:
    return bool(candidate & 1)


def key_factor(candidate: int) -> int:
    """The scalar f with candidate key = f * k mod N."""
    f = pow(LAMBDA, lambda_power(candidate), N)
    return (N - f) % N if negated(candidate) else f


def transform_key(k: int, candidate: int) -> int:
    return key_factor(candidate) * k % N


def transform_point(pt: Point, candidate: int) -> Point:
    """The candidate point from P with a field multiplication, not a scalar multiplication."""
    if pt is None:
        return None
    x, y = pt
    x = x * pow(BETA, lambda_power(candidate), P) % P
    if negated(candidate):
        y = (P - y) % P
    return (x, y)


def describe(candidate: int) -> str:
    """Human text for the transform a requester applies, e.g. '-lambda^2'."""
    sign = "-" if negated(candidate) else ""
    e = lambda_power(candidate)
    return sign + ("1" if e == 0 else "lambda" if e == 1 else "lambda^2")
