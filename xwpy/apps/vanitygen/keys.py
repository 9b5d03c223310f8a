"""Keys and their encodings: candidate public keys by coincurve, P2PKH addresses, WIF.

Everything here is the plain, trusted path (libsecp256k1 through coincurve, ``base58`` for
base58check): it is what the verifier runs once per claimed match and what the requester's
``combine`` uses, never the search loop.
"""

from __future__ import annotations

import base58
import coincurve

from xwpy.apps.vanitygen.candidates import key_factor, transform_key
from xwpy.apps.vanitygen.hashing import hash160
from xwpy.apps.vanitygen.secp256k1 import N

WIF_PREFIX = b"\x80"  # mainnet private key


def address(public_key: bytes) -> str:
    return base58.b58encode_check(b"\x00" + hash160(public_key)).decode("ascii")


def public_key(key: int, compressed: bool = True) -> bytes:
    if not 0 < key < N:
        raise ValueError("a private key must be in [1, N)")
    return coincurve.PublicKey.from_secret(key.to_bytes(32, "big")).format(compressed)


def candidate_public_key(k: int, candidate: int, compressed: bool, q: bytes | None = None) -> bytes:
    """Public key of candidate ``candidate`` of the point k G (+ Q): one key derivation."""
    if q is None:
        return public_key(transform_key(k, candidate), compressed)
    qk = coincurve.PublicKey(q)
    if k % N:
        try:
            qk = coincurve.PublicKey.combine_keys([coincurve.PublicKey.from_secret(k.to_bytes(32, "big")), qk])
        except ValueError:
            raise ValueError("k G + Q is the point at infinity") from None
    return qk.multiply(key_factor(candidate).to_bytes(32, "big")).format(compressed)


def wif_encode(key: int, compressed: bool = True) -> str:
    if not 0 < key < N:
        raise ValueError("a private key must be in [1, N)")
    payload = WIF_PREFIX + key.to_bytes(32, "big") + (b"\x01" if compressed else b"")
    return base58.b58encode_check(payload).decode("ascii")


def wif_decode(wif: str) -> tuple[int, bool]:
    """(key, compressed) from a mainnet WIF; ValueError says what is wrong."""
    try:
        raw = base58.b58decode_check(wif.strip())
    except ValueError as exc:
        raise ValueError(f"not a valid WIF string ({exc})") from None
    if raw[:1] != WIF_PREFIX or len(raw) not in (33, 34) or (len(raw) == 34 and raw[33] != 1):
        raise ValueError("not a mainnet WIF private key (expected 0x80, 32 bytes, optional 0x01)")
    key = int.from_bytes(raw[1:33], "big")
    if not 0 < key < N:
        raise ValueError("WIF private key is out of range")
    return key, len(raw) == 34


def parse_private_key(text: str) -> int:
    """A private key as 64 hex digits or WIF."""
    text = text.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        key = int(text, 16)
        if not 0 < key < N:
            raise ValueError("private key is out of range [1, N)")
        return key
    return wif_decode(text)[0]
