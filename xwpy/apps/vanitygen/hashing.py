"""SHA-256, RIPEMD-160 and hash160, with a pure-Python RIPEMD-160 for OpenSSL builds without it.

OpenSSL 3 moved RIPEMD-160 to the legacy provider, so ``hashlib.new("ripemd160")`` fails on some
systems. ``ripemd160_factory()`` returns the fastest constructor available (hashlib, else
pycryptodome when it happens to be installed, else pure Python); the kernels call it once and copy
a fresh object per message (copying is ~3x cheaper than ``hashlib.new`` by name). The native
kernel has its own RIPEMD-160 and needs none of this.
"""

from __future__ import annotations

import hashlib
import importlib
import struct
from typing import Callable

try:  # CPython's own SHA-256 has less per-call overhead than OpenSSL's EVP for 33-byte inputs.
    from _sha2 import sha256 as fast_sha256  # Python >= 3.12
except ImportError:
    try:
        from _sha256 import sha256 as fast_sha256  # Python 3.11
    except ImportError:  # pragma: no cover - exotic builds
        fast_sha256 = hashlib.sha256


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


# ---- pure-Python RIPEMD-160 (ISO/IEC 10118-3), written from the specification ----

_RL = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
    3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
    1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
    4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
]
_RR = [
    5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
    6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
    15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
    8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
    12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
]
_SL = [
    11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
    7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
    11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
    11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
    9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
]
_SR = [
    8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
    9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
    9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
    15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
    8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
]
_KL = [0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E]
_KR = [0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000]
_M32 = 0xFFFFFFFF


def _f(j: int, x: int, y: int, z: int) -> int:
    if j == 0:
        return x ^ y ^ z
    if j == 1:
        return (x & y) | (~x & z)
    if j == 2:
        return (x | ~y) ^ z
    if j == 3:
        return (x & z) | (y & ~z)
    return x ^ (y | ~z)


def _rol(x: int, s: int) -> int:
    x &= _M32
    return ((x << s) | (x >> (32 - s))) & _M32


def _compress(h: list[int], block: bytes) -> list[int]:
    X = struct.unpack("<16I", block)
    al, bl, cl, dl, el = h
    ar, br, cr, dr, er = h
    for i in range(80):
        rnd = i // 16
        t = _rol(al + _f(rnd, bl, cl, dl) + X[_RL[i]] + _KL[rnd], _SL[i]) + el
        al, el, dl, cl, bl = el, dl, _rol(cl, 10), bl, t & _M32
        t = _rol(ar + _f(4 - rnd, br, cr, dr) + X[_RR[i]] + _KR[rnd], _SR[i]) + er
        ar, er, dr, cr, br = er, dr, _rol(cr, 10), br, t & _M32
    return [
        (h[1] + cl + dr) & _M32,
        (h[2] + dl + er) & _M32,
        (h[3] + el + ar) & _M32,
        (h[4] + al + br) & _M32,
        (h[0] + bl + cr) & _M32,
    ]


def ripemd160_pure(data: bytes) -> bytes:
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    msg = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", 8 * len(data))
    for i in range(0, len(msg), 64):
        h = _compress(h, msg[i : i + 64])
    return struct.pack("<5I", *h)


class _PureRipemd:
    """Just enough of the hashlib object protocol for the kernels' copy/update/digest pattern."""

    __slots__ = ("_buf",)

    def __init__(self, data: bytes = b"") -> None:
        self._buf = bytes(data)

    def copy(self) -> "_PureRipemd":
        return _PureRipemd(self._buf)

    def update(self, data: bytes) -> None:
        self._buf += data

    def digest(self) -> bytes:
        return ripemd160_pure(self._buf)


def _pycryptodome_ripemd() -> Callable[[], object] | None:
    """pycryptodome's C RIPEMD-160, when installed (~5 us per hash against ~90 us in Python)."""
    for name in ("Cryptodome.Hash.RIPEMD160", "Crypto.Hash.RIPEMD160"):
        try:
            return importlib.import_module(name).new
        except ImportError:
            continue
    return None


def _hashlib_has_ripemd() -> bool:
    try:
        return hashlib.new("ripemd160", b"abc").hexdigest() == "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
    except (ValueError, TypeError):
        return False


HASHLIB_RIPEMD = _hashlib_has_ripemd()


def ripemd160_factory(force_pure: bool = False) -> Callable[[], object]:
    """Return a zero-argument callable that makes an empty RIPEMD-160 hash object: hashlib's,
    else pycryptodome's if installed, else the pure-Python one (also forced by ``force_pure``)."""
    if force_pure:
        return _PureRipemd
    if HASHLIB_RIPEMD:
        return hashlib.new("ripemd160").copy
    return _pycryptodome_ripemd() or _PureRipemd


def ripemd160(data: bytes) -> bytes:
    if HASHLIB_RIPEMD:
        return hashlib.new("ripemd160", data).digest()
    return ripemd160_pure(data)


def hash160(data: bytes) -> bytes:
    return ripemd160(hashlib.sha256(data).digest())


def checksum(hash160_bytes: bytes) -> bytes:
    """The 4-byte base58check checksum of a P2PKH payload (version byte 0x00)."""
    return sha256d(b"\x00" + hash160_bytes)[:4]
