"""The vanity app's result verifier (registered in xwpy.verify.BUILTIN as "vanitygen").

A claimed match is re-derived from the unit's arguments and the claimed (offset, candidate) with
one key derivation: it is VERIFIED iff the derived address matches the prefix and the result file
is byte for byte the record an honest worker writes for that match. A "no-match" claim cannot be
checked cheaply: it is UNVERIFIABLE (the quorum decides) if well-formed, else REJECTED. Anything
else, and any failure while checking, is REJECTED: this runs on hostile input and never raises.

What it does not prove: that the match is the *first* in the range. Any verified match certifies
the search (the requester gets a key that spends a matching address), so a worker gains nothing
by reporting a later one.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from xwpy.verify import Verdict

from xwpy.apps.vanitygen.candidates import PER_POINT, Hit
from xwpy.apps.vanitygen.unit import RESULT_FILE, match_record, no_match_record, parse_args, result_bytes

MAX_RESULT_BYTES = 4096  # an honest record is under 700 bytes


def _small_int(value: object, below: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < below:
        return value
    return None


def verify(args: Sequence[str], files: Mapping[str, bytes]) -> Verdict:
    try:
        return _verify(args, files)
    except Exception:  # noqa: BLE001 - by contract a verifier answers, it does not raise
        return Verdict.REJECTED


def _verify(args: Sequence[str], files: Mapping[str, bytes]) -> Verdict:
    spec = parse_args(list(args))
    data = files.get(RESULT_FILE)
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_RESULT_BYTES:
        return Verdict.REJECTED
    data = bytes(data)
    record = json.loads(data)
    if not isinstance(record, dict):
        return Verdict.REJECTED
    status = record.get("status")
    if status == "no-match":
        return Verdict.UNVERIFIABLE if data == result_bytes(no_match_record(spec)) else Verdict.REJECTED
    if status != "match":
        return Verdict.REJECTED
    offset = _small_int(record.get("offset"), spec.count)
    candidate = _small_int(record.get("candidate"), PER_POINT)
    if offset is None or candidate is None:
        return Verdict.REJECTED
    expected = match_record(spec, Hit(offset, candidate))  # the one key derivation
    if not spec.target().matches_address(expected["address"]):
        return Verdict.REJECTED
    return Verdict.VERIFIED if data == result_bytes(expected) else Verdict.REJECTED
