"""The reference kernel: slow and obviously right, to cross-check the fast kernels.

For every offset and candidate it derives the public key with coincurve (libsecp256k1) from the
candidate's private key (or, in split-key mode, by scalar-multiplying the point), encodes the
address with the ``base58`` package and compares strings. It shares nothing with the fast kernels
except the candidate order and the definition of the walk.
"""

from __future__ import annotations

import hashlib

import base58
import coincurve

from xwpy.apps.vanitygen.candidates import PER_POINT, Hit, key_factor, transform_key
from xwpy.apps.vanitygen.prefix import Target
from xwpy.apps.vanitygen.secp256k1 import N, Point, encode


def address_of(public_key: bytes) -> str:
    h160 = hashlib.new("ripemd160", hashlib.sha256(public_key).digest()).digest()
    return base58.b58encode_check(b"\x00" + h160).decode("ascii")


def _point(k: int, q: coincurve.PublicKey | None) -> coincurve.PublicKey | None:
    """k G + Q, or None for the point at infinity."""
    if q is None:
        return coincurve.PublicKey.from_secret(k.to_bytes(32, "big")) if k else None
    if k == 0:
        return q
    try:
        return coincurve.PublicKey.combine_keys([coincurve.PublicKey.from_secret(k.to_bytes(32, "big")), q])
    except ValueError:  # k G == -Q
        return None


def candidate_public_keys(k: int, compressed: bool, q: coincurve.PublicKey | None) -> list[bytes] | None:
    """The six candidate encodings for scalar k (None if k G + Q is infinity)."""
    if q is None:
        if k == 0:
            return None
        return [
            coincurve.PublicKey.from_secret(transform_key(k, c).to_bytes(32, "big")).format(compressed)
            for c in range(PER_POINT)
        ]
    pt = _point(k, q)
    if pt is None:
        return None
    return [pt.multiply(key_factor(c).to_bytes(32, "big")).format(compressed) for c in range(PER_POINT)]


def scan(
    target: Target,
    start: int,
    count: int,
    *,
    compressed: bool = True,
    pubkey: Point = None,
    limit: int = 1,
) -> list[Hit]:
    q = coincurve.PublicKey(encode(pubkey)) if pubkey is not None else None
    hits: list[Hit] = []
    for offset in range(count):
        pubs = candidate_public_keys((start + offset) % N, compressed, q)
        for c, pub in enumerate(pubs or ()):
            if target.matches_address(address_of(pub)):
                hits.append(Hit(offset, c))
                if len(hits) >= limit:
                    return hits
    return hits
