"""A vanity work unit: the program the grid runs, and the records it writes.

    python -m xwpy.apps.vanitygen.unit --prefix P [--icase] [--uncompressed] \\
        --start HEX --count N [--pubkey HEX]

searches offsets ``[0, N)`` from scalar ``start`` (points ``(start + i) G``, plus ``Q`` = pubkey in
split-key mode) and writes ``result.json`` in the current directory: the lowest (offset, candidate)
match or "no-match". The file is canonical JSON (sorted keys, no whitespace, no timings or host
names), so honest replicas of a unit produce the same bytes whatever kernel they run.

A match record carries the derived address and, without ``--pubkey``, the private key and its WIF;
with ``--pubkey`` only the partial key ``k = start + offset`` and the candidate's transform: the
spending key is ``(-1)^negate * lambda^lambda_power * (k + q) mod N``, which only the holder of
``q`` can compute (``xwpy vanity combine``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Sequence

from xwpy.apps.vanitygen import kernels
from xwpy.apps.vanitygen.candidates import PER_POINT, Hit, lambda_power, negated, transform_key
from xwpy.apps.vanitygen.keys import address, candidate_public_key, wif_encode
from xwpy.apps.vanitygen.prefix import PrefixError, Target, compile_prefix
from xwpy.apps.vanitygen.secp256k1 import N, Point, decode

RESULT_FILE = "result.json"
FORMAT_VERSION = 1
MAX_COUNT = 1 << 40  # points per unit; a unit is minutes of work, this is far beyond
_HEX = frozenset("0123456789abcdef")


class UnitArgsError(ValueError):
    """Bad work-unit arguments; the message names the argument."""


@dataclass(frozen=True)
class UnitSpec:
    prefix: str
    start: int
    count: int
    icase: bool = False
    compressed: bool = True
    pubkey: bytes | None = None  # SEC1 encoding of Q (split-key mode)

    def target(self) -> Target:
        return compile_prefix(self.prefix, self.icase)

    def pubkey_point(self) -> Point:
        return decode(self.pubkey) if self.pubkey is not None else None

    def to_args(self) -> list[str]:
        """Canonical argument list; parse_args(spec.to_args()) == spec."""
        args = ["--prefix", self.prefix]
        if self.icase:
            args.append("--icase")
        if not self.compressed:
            args.append("--uncompressed")
        args += ["--start", f"{self.start:064x}", "--count", str(self.count)]
        if self.pubkey is not None:
            args += ["--pubkey", self.pubkey.hex()]
        return args


def _hex_int(name: str, text: str, digits: int) -> int:
    t = text.lower()
    if not 1 <= len(t) <= digits or not set(t) <= _HEX:
        raise UnitArgsError(f"{name} must be 1 to {digits} hexadecimal digits, got {text[:80]!r}")
    return int(t, 16)


def parse_args(argv: Sequence[str]) -> UnitSpec:
    """Strict parser (the verifier runs it on untrusted input): known options only, each once."""
    if isinstance(argv, (str, bytes)) or not all(isinstance(a, str) for a in argv):
        raise UnitArgsError("arguments must be a list of strings")
    flags = {"--icase", "--uncompressed"}
    valued = {"--prefix", "--start", "--count", "--pubkey"}
    seen: dict[str, str | None] = {}
    it = iter(argv)
    for arg in it:
        if arg in seen:
            raise UnitArgsError(f"{arg} given twice")
        if arg in flags:
            seen[arg] = None
        elif arg in valued:
            value = next(it, None)
            if value is None:
                raise UnitArgsError(f"{arg} needs a value")
            seen[arg] = value
        else:
            raise UnitArgsError(f"unknown argument {arg[:80]!r}")
    for required in ("--prefix", "--start", "--count"):
        if required not in seen:
            raise UnitArgsError(f"missing {required}")
    prefix = seen["--prefix"]
    start = _hex_int("--start", seen["--start"], 64)
    if start >= N:
        raise UnitArgsError("--start must be below the group order N")
    count_text = seen["--count"]
    if not count_text.isdigit() or not count_text.isascii() or len(count_text) > 15:
        raise UnitArgsError(f"--count must be a decimal integer, got {count_text[:80]!r}")
    count = int(count_text)
    if not 1 <= count <= MAX_COUNT:
        raise UnitArgsError(f"--count must be between 1 and {MAX_COUNT}, got {count}")
    pubkey = None
    if "--pubkey" in seen:
        text = seen["--pubkey"].lower()
        if len(text) not in (66, 130) or not set(text) <= _HEX:
            raise UnitArgsError("--pubkey must be a SEC1 public key in hex (66 or 130 digits)")
        pubkey = bytes.fromhex(text)
        try:
            decode(pubkey)
        except ValueError as exc:
            raise UnitArgsError(f"--pubkey: {exc}") from None
    spec = UnitSpec(
        prefix=prefix,
        start=start,
        count=count,
        icase="--icase" in seen,
        compressed="--uncompressed" not in seen,
        pubkey=pubkey,
    )
    try:
        spec.target()
    except PrefixError as exc:
        raise UnitArgsError(f"--prefix: {exc}") from None
    return spec


def _common(spec: UnitSpec, status: str) -> dict:
    rec = {
        "version": FORMAT_VERSION,
        "status": status,
        "prefix": spec.prefix,
        "icase": spec.icase,
        "compressed": spec.compressed,
        "start": f"{spec.start:064x}",
        "count": spec.count,
    }
    if spec.pubkey is not None:
        rec["pubkey"] = spec.pubkey.hex()
    return rec


def no_match_record(spec: UnitSpec) -> dict:
    return _common(spec, "no-match")


def match_record(spec: UnitSpec, hit: Hit) -> dict:
    """The record of a match, derived from (spec, offset, candidate) with one key derivation.

    Raises ValueError if the offset or candidate is out of range or names no key; does not check
    that the address matches the prefix (the caller does: the kernel found it, the verifier
    checks it)."""
    offset, candidate = hit
    if not 0 <= offset < spec.count:
        raise ValueError(f"offset {offset} is outside the unit's range [0, {spec.count})")
    if not 0 <= candidate < PER_POINT:
        raise ValueError(f"candidate {candidate} is not in [0, {PER_POINT})")
    k = (spec.start + offset) % N
    if spec.pubkey is None and k == 0:
        raise ValueError("the scalar at this offset is zero, which is no key")
    pub = candidate_public_key(k, candidate, spec.compressed, spec.pubkey)
    rec = _common(spec, "match")
    rec.update(
        offset=offset,
        candidate=candidate,
        lambda_power=lambda_power(candidate),
        negate=negated(candidate),
        address=address(pub),
    )
    if spec.pubkey is None:
        key = transform_key(k, candidate)
        rec.update(private_key=f"{key:064x}", wif=wif_encode(key, spec.compressed))
    else:
        rec["partial_key"] = f"{k:064x}"
    return rec


def result_bytes(record: dict) -> bytes:
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")


def run(spec: UnitSpec, kernel: str | None = None) -> dict:
    """Search the unit's range and return its record."""
    _, scan = kernels.get(kernel)
    target = spec.target()
    hits = scan(target, spec.start, spec.count, compressed=spec.compressed, pubkey=spec.pubkey_point(), limit=1)
    if not hits:
        return no_match_record(spec)
    rec = match_record(spec, hits[0])
    if not target.matches_address(rec["address"]):  # a kernel bug must not become a result
        raise RuntimeError(f"kernel reported {hits[0]} but its address {rec['address']} does not match")
    return rec


def run_args(argv: Sequence[str], kernel: str | None = None) -> bytes:
    """Parse, run, serialise: what a worker process does (used by local mode too)."""
    return result_bytes(run(parse_args(argv), kernel))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        data = run_args(argv)
    except UnitArgsError as exc:
        print(f"vanity unit: {exc}", file=sys.stderr)
        return 2
    with open(RESULT_FILE, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
