"""Split-key mode on the requester's side: make the secret, combine it with the grid's answer.

The requester keeps ``q`` and publishes ``Q = q G``; the grid searches ``k`` such that a candidate
of ``k G + Q`` has a matching address and returns ``k`` with the candidate's transform. The key
that spends the address is ``(-1)^negate * lambda^lambda_power * (k + q) mod N``: computing it
needs ``q``, which never leaves the requester.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from xwpy.apps.vanitygen.candidates import PER_POINT, transform_key
from xwpy.apps.vanitygen.keys import address, public_key, wif_encode
from xwpy.apps.vanitygen.secp256k1 import N, decode, encode


class CombineError(ValueError):
    """The parts do not combine into the claimed key; the message says which part is wrong."""


def keygen() -> tuple[int, bytes]:
    """A fresh secret q and its compressed public key Q."""
    q = secrets.randbelow(N - 1) + 1
    return q, public_key(q, compressed=True)


@dataclass(frozen=True)
class Combined:
    key: int
    wif: str
    address: str
    compressed: bool


def combine_parts(partial: int, candidate: int, secret: int, compressed: bool = True) -> Combined:
    if not 0 <= partial < N:
        raise CombineError("partial key must be in [0, N)")
    if not 0 <= candidate < PER_POINT:
        raise CombineError(f"candidate must be in [0, {PER_POINT})")
    if not 0 < secret < N:
        raise CombineError("secret must be in [1, N)")
    key = transform_key((partial + secret) % N, candidate)
    if key == 0:
        raise CombineError("partial key and secret cancel out (k + q = 0 mod N): no key")
    return Combined(key, wif_encode(key, compressed), address(public_key(key, compressed)), compressed)


def combine_record(record: dict, secret: int) -> Combined:
    """Combine a split-key match record (a unit's result.json) with the secret q; checks that q
    belongs to the search's public key and that the result spends the record's address."""
    if not isinstance(record, dict) or record.get("status") != "match":
        raise CombineError("the result is not a match record")
    if "partial_key" not in record or "pubkey" not in record:
        raise CombineError("the result is not from a split-key search (it has no partial key)")
    compressed = bool(record.get("compressed", True))
    try:
        partial = int(record["partial_key"], 16)
        candidate = int(record["candidate"])
        pub = bytes.fromhex(record["pubkey"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CombineError(f"malformed match record ({exc})") from None
    try:
        search_pub = encode(decode(pub), True)
    except ValueError as exc:
        raise CombineError(f"the record's public key is invalid ({exc})") from None
    if not 0 < secret < N or public_key(secret, True) != search_pub:
        raise CombineError("the secret does not belong to the public key the search used")
    out = combine_parts(partial, candidate, secret, compressed)
    if out.address != record.get("address"):
        raise CombineError(
            f"combined key gives address {out.address}, not the record's {record.get('address')}: "
            "the record is wrong or was altered"
        )
    return out
