"""Plain secp256k1 arithmetic in pure Python: constants, affine points, scalar multiplication.

This is the slow, general code path (any input, including the point at infinity). The search
kernels use it only to set up a walk and to handle the rare degenerate batch; the hot loop lives in
``kernel.py`` (and ``_native.c``). Points are ``(x, y)`` tuples of ints, ``None`` is infinity.
"""

from __future__ import annotations

from typing import Optional, Tuple

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8
G = (GX, GY)

# The endomorphism: lambda * (x, y) == (beta * x, y), with beta^3 == 1 mod P and lambda^3 == 1 mod N.
BETA = 0x7AE96A2B657C07106E64479EAC3434E99CF0497512F58995C1396C28719501EE
LAMBDA = 0x5363AD4CC05C30E0A5261C028812645A122E22EA20816678DF02967C1B23BD72

Point = Optional[Tuple[int, int]]


def is_on_curve(pt: Point) -> bool:
    if pt is None:
        return True
    x, y = pt
    return 0 <= x < P and 0 <= y < P and (y * y - x * x * x - 7) % P == 0


def neg(pt: Point) -> Point:
    if pt is None:
        return None
    return (pt[0], (P - pt[1]) % P)


def add(a: Point, b: Point) -> Point:
    """Affine addition with every special case (infinity, doubling, inverse points)."""
    if a is None:
        return b
    if b is None:
        return a
    x1, y1 = a
    x2, y2 = b
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = 3 * x1 * x1 * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return (x3, (lam * (x1 - x3) - y1) % P)


# Jacobian coordinates for scalar multiplication: one inversion at the end instead of one per step.
def _jdouble(X: int, Y: int, Z: int) -> tuple[int, int, int]:
    if Y == 0:
        return (0, 1, 0)
    S = 4 * X * Y * Y % P
    M = 3 * X * X % P
    X3 = (M * M - 2 * S) % P
    Y3 = (M * (S - X3) - 8 * pow(Y, 4, P)) % P
    return (X3, Y3, 2 * Y * Z % P)


def _jadd_affine(X: int, Y: int, Z: int, x2: int, y2: int) -> tuple[int, int, int]:
    if Z == 0:
        return (x2, y2, 1)
    Z2 = Z * Z % P
    U2 = x2 * Z2 % P
    S2 = y2 * Z2 * Z % P
    if U2 == X:
        if S2 == Y:
            return _jdouble(X, Y, Z)
        return (0, 1, 0)
    H = (U2 - X) % P
    R = (S2 - Y) % P
    H2 = H * H % P
    H3 = H2 * H % P
    X3 = (R * R - H3 - 2 * X * H2) % P
    Y3 = (R * (X * H2 - X3) - Y * H3) % P
    return (X3, Y3, Z * H % P)


def mul(k: int, pt: Point = G) -> Point:
    """k * pt for any integer k (reduced mod N)."""
    k %= N
    if pt is None or k == 0:
        return None
    x2, y2 = pt
    X, Y, Z = 0, 1, 0
    for bit in bin(k)[2:]:
        X, Y, Z = _jdouble(X, Y, Z)
        if bit == "1":
            X, Y, Z = _jadd_affine(X, Y, Z, x2, y2)
    if Z == 0:
        return None
    zi = pow(Z, -1, P)
    zi2 = zi * zi % P
    return (X * zi2 % P, Y * zi2 * zi % P)


def encode(pt: Tuple[int, int], compressed: bool = True) -> bytes:
    """SEC1 encoding of a finite point."""
    x, y = pt
    if compressed:
        return bytes([2 + (y & 1)]) + x.to_bytes(32, "big")
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def decode(data: bytes) -> Tuple[int, int]:
    """Parse a SEC1 public key (33 or 65 bytes); ValueError names what is wrong."""
    if len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise ValueError("public key x coordinate is not below the field prime")
        y2 = (pow(x, 3, P) + 7) % P
        y = pow(y2, (P + 1) // 4, P)
        if y * y % P != y2:
            raise ValueError("public key x coordinate is not on secp256k1")
        if (y & 1) != (data[0] & 1):
            y = P - y
        return (x, y)
    if len(data) == 65 and data[0] == 4:
        pt = (int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big"))
        if not is_on_curve(pt):
            raise ValueError("public key point is not on secp256k1")
        return pt
    raise ValueError(
        f"public key must be 33 bytes starting 02/03 or 65 bytes starting 04, got {len(data)} bytes"
    )
