"""Address prefixes: validation, case-insensitive expansion, and exact ranges of matching payloads.

A P2PKH address is ``base58(0x00 || hash160 || checksum)``. Base58 writes each leading zero byte as
'1' and the remaining number in plain base58 digits, so with ``V = int(hash160 || checksum)`` (192
bits; the version byte is always a zero byte, hence the first '1'):

    address = '1' * (1 + leading zero bytes of V) + base58_digits(V)

A prefix ``'1' * m + s`` (``s`` not starting with '1') therefore matches exactly the V that have
``m - 1`` leading zero bytes and whose base58 digits start with ``s``: for each possible digit count
``L`` that is the interval ``[v * 58**(L-len(s)), (v+1) * 58**(L-len(s)))`` where ``v`` is ``s`` read
as a base58 number. Intersecting with the zero-byte interval gives a few exact ranges over V, and
from them ranges over hash160 integers that the kernels test without ever base58-encoding anything.
The probability that a key matches is the total size of the ranges divided by 2**192.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from xwpy.apps.vanitygen.hashing import checksum

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DIGIT = {c: i for i, c in enumerate(ALPHABET)}
V_BITS = 192  # hash160 (160 bits) || checksum (32 bits)
MAX_PREFIX_LENGTH = 35  # longer than any P2PKH address (at most 34 characters)
MAX_VARIANTS = 4096  # case-insensitive spellings expanded; 12 letters is already hopeless to search


class PrefixError(ValueError):
    """A prefix that no P2PKH address can start with; the message says why."""


def b58_digits(v: int) -> str:
    """Base58 digits of v without leading '1' padding (the empty string for 0)."""
    out = []
    while v:
        v, r = divmod(v, 58)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def address_from_hash160(h160: bytes) -> str:
    """The P2PKH address of a hash160, computed from the definition (used by slow paths only)."""
    payload = b"\x00" + h160 + checksum(h160)
    zeros = len(payload) - len(payload.lstrip(b"\x00"))
    return "1" * zeros + b58_digits(int.from_bytes(payload, "big"))


def _case_options(ch: str, icase: bool) -> str:
    if not icase:
        return ch if ch in _DIGIT else ""
    return "".join(sorted({c for c in (ch.lower(), ch.upper()) if c in _DIGIT}))


def _zero_byte_interval(zero_bytes: int) -> tuple[int, int]:
    """V values with exactly this many leading zero bytes (of 24)."""
    hi = 256 ** (24 - zero_bytes)
    lo = 256 ** (23 - zero_bytes) if zero_bytes < 24 else 0
    return lo, hi


def _ranges_for(ones: int, rest: str) -> list[tuple[int, int]]:
    """Exact half-open V ranges for the prefix '1' * ones + rest (rest not starting with '1')."""
    if not rest:
        return [(0, 256 ** (25 - ones))] if ones <= 25 else []
    if ones > 24:
        return []
    lo_b, hi_b = _zero_byte_interval(ones - 1)
    v = 0
    for ch in rest:
        v = v * 58 + _DIGIT[ch]
    out = []
    max_len = len(b58_digits(hi_b - 1))
    for length in range(len(rest), max_len + 1):
        scale = 58 ** (length - len(rest))
        lo, hi = max(v * scale, lo_b), min((v + 1) * scale, hi_b)
        if lo < hi:
            out.append((lo, hi))
    return out


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _range_realizable(lo: int, hi: int) -> bool:
    """Does some hash160 h give V = h || checksum(h) in [lo, hi)? Exact: the checksum is not free."""
    h_lo, h_hi = lo >> 32, (hi - 1) >> 32
    if h_hi - h_lo >= 2:
        return True  # every hash160 strictly between the ends matches whatever its checksum
    for h in {h_lo, h_hi}:
        v = (h << 32) | int.from_bytes(checksum(h.to_bytes(20, "big")), "big")
        if lo <= v < hi:
            return True
    return False


def _impossible_reason(text: str, ones: int, rest: str) -> str:
    if ones > 21:
        return (
            f"prefix {text!r} has {ones} leading '1's but an address has at most 21: one for the "
            "version byte and one per zero byte of the hash160, and the all-zero hash160's "
            "checksum does not start with a zero byte"
        )
    lo_b, hi_b = _zero_byte_interval(ones - 1)
    lo_s, hi_s = b58_digits(lo_b), b58_digits(hi_b - 1)
    ones_txt = f"{ones} leading '1'" + ("s" if ones > 1 else "")
    if len(rest) > len(hi_s):
        return (
            f"prefix {text!r} is too long: after {ones_txt} an address has at most "
            f"{len(hi_s)} more characters, the prefix asks for {len(rest)}"
        )
    return (
        f"no address starts with {text!r}: after {ones_txt} the rest of an address is a base58 "
        f"number from {lo_s!r} ({len(lo_s)} digits) to {hi_s!r} ({len(hi_s)} digits), and none of "
        f"them starts with {rest!r} (its first character is too large for that length)"
    )


@dataclass(frozen=True)
class Target:
    """A compiled prefix: exact V ranges, and inclusive hash160 bounds the kernels compare against."""

    prefix: str
    icase: bool
    ranges: tuple[tuple[int, int], ...]  # sorted, disjoint, half-open, over V (192-bit)
    h160_bounds: tuple[tuple[bytes, bytes], ...] = field(init=False)  # inclusive, 20-byte big-endian
    _starts: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        bounds = tuple(
            ((lo >> 32).to_bytes(20, "big"), ((hi - 1) >> 32).to_bytes(20, "big"))
            for lo, hi in self.ranges
        )
        object.__setattr__(self, "h160_bounds", bounds)
        object.__setattr__(self, "_starts", tuple(lo for lo, _ in self.ranges))

    @property
    def probability(self) -> Fraction:
        """Probability that one uniformly random key's address matches."""
        return Fraction(sum(hi - lo for lo, hi in self.ranges), 2**V_BITS)

    def matches_v(self, v: int) -> bool:
        i = bisect.bisect_right(self._starts, v) - 1
        return i >= 0 and v < self.ranges[i][1]

    def matches_hash160(self, h160: bytes) -> bool:
        """Exact test, checksum included; the kernels call it only when the bounds say maybe."""
        v = int.from_bytes(h160 + checksum(h160), "big")
        return self.matches_v(v)

    def matches_address(self, address: str) -> bool:
        """The obviously-right string comparison, for the reference kernel and for tests."""
        head = address[: len(self.prefix)]
        if self.icase:
            return len(head) == len(self.prefix) and head.lower() == self.prefix.lower()
        return head == self.prefix

    def ranges_bytes(self) -> bytes:
        """Ranges as 48-byte records (low, high - 1; 24-byte big-endian each) for the C kernel."""
        return b"".join(lo.to_bytes(24, "big") + (hi - 1).to_bytes(24, "big") for lo, hi in self.ranges)


def compile_prefix(text: object, icase: bool = False) -> Target:
    """Validate a prefix and compute its exact ranges; raise PrefixError saying what is wrong."""
    if not isinstance(text, str):
        raise PrefixError(f"prefix must be a string, got {type(text).__name__}")
    return _compile(text, bool(icase))


@lru_cache(maxsize=64)  # Targets are immutable; a unit, its verifier and a search reuse them
def _compile(text: str, icase: bool) -> Target:
    if not text:
        raise PrefixError("prefix is empty; a P2PKH address prefix starts with '1'")
    if len(text) > MAX_PREFIX_LENGTH:
        raise PrefixError(
            f"prefix is {len(text)} characters long; a P2PKH address has at most 34 characters"
        )
    bad = [(i, c) for i, c in enumerate(text) if not _case_options(c, icase)]
    if bad:
        shown = ", ".join(f"{c!r} at position {i + 1}" for i, c in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        hint = "" if icase else "; base58 omits 0, O, I and l (try --icase for letters)"
        if icase:
            hint = "; base58 has no 0 and no case of it"
        raise PrefixError(f"prefix {text!r} has characters that are not base58: {shown}{more}{hint}")
    if text[0] != "1":
        raise PrefixError(
            f"prefix {text!r} does not start with '1': legacy P2PKH addresses always start with "
            "'1' (addresses starting with '3' are P2SH and 'bc1' are SegWit, not supported)"
        )
    options = [_case_options(c, icase) for c in text]
    n_variants = 1
    for o in options:
        n_variants *= len(o)
    if n_variants > MAX_VARIANTS:
        raise PrefixError(
            f"case-insensitive prefix {text!r} has {n_variants} spellings; at most {MAX_VARIANTS} "
            "are supported (use fewer letters)"
        )
    ranges: list[tuple[int, int]] = []
    for spelling in itertools.product(*options):
        s = "".join(spelling)
        rest = s.lstrip("1")
        ranges.extend(_ranges_for(len(s) - len(rest), rest))
    ones = len(text) - len(text.lstrip("1"))
    geometric = _merge(ranges)
    if not geometric or ones > 21:
        raise PrefixError(_impossible_reason(text, ones, text[ones:]))
    merged = tuple(r for r in geometric if _range_realizable(*r))
    if not merged:
        raise PrefixError(
            f"no address starts with {text!r}: only hash160 values with {ones - 1} leading zero "
            "bytes could give it, and their checksums rule it out"
        )
    return Target(prefix=text, icase=icase, ranges=merged)
