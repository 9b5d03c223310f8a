import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.verify import Verdict, load_verifier

from xwpy.apps.vanitygen.candidates import Hit
from xwpy.apps.vanitygen.secp256k1 import N, encode, mul
from xwpy.apps.vanitygen.unit import UnitSpec, match_record, no_match_record, result_bytes, run
from xwpy.apps.vanitygen.verify import verify

SPEC = UnitSpec(prefix="1A", start=0xABCDEF, count=500)
SPLIT = UnitSpec(prefix="1A", start=0x1234, count=500, pubkey=encode(mul(0x5EC12E7), True))


@pytest.fixture(scope="module", params=[SPEC, SPLIT], ids=["plain", "split-key"])
def claim(request):
    spec = request.param
    rec = run(spec, "python")
    assert rec["status"] == "match"
    return spec, rec


def files(rec):
    return {"result.json": result_bytes(rec)}


def test_registered_as_builtin_verifier():
    assert load_verifier("vanitygen") is verify


def test_true_match_is_verified(claim):
    spec, rec = claim
    assert verify(spec.to_args(), files(rec)) is Verdict.VERIFIED


def test_no_match_is_unverifiable_only_when_canonical():
    assert verify(SPEC.to_args(), files(no_match_record(SPEC))) is Verdict.UNVERIFIABLE
    rec = no_match_record(SPEC)
    rec["count"] = 499
    assert verify(SPEC.to_args(), files(rec)) is Verdict.REJECTED
    data = result_bytes(no_match_record(SPEC)).replace(b",", b", ")
    assert verify(SPEC.to_args(), {"result.json": data}) is Verdict.REJECTED


FORGERIES = {
    "offset": lambda r: r["offset"] + 1,
    "candidate": lambda r: (r["candidate"] + 1) % 6,
    "address": lambda r: "1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "start": lambda r: "00" * 32,
    "status": lambda r: "no-match",
    "version": lambda r: 2,
    "wif": lambda r: "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ",
    "private_key": lambda r: "00" * 31 + "01",
    "partial_key": lambda r: "00" * 31 + "02",
    "pubkey": lambda r: encode(mul(3)).hex(),
}
PLAIN_ONLY = {"wif", "private_key"}
SPLIT_ONLY = {"partial_key", "pubkey"}


@pytest.mark.parametrize(
    "spec, field",
    [(SPEC, f) for f in FORGERIES if f not in SPLIT_ONLY] + [(SPLIT, f) for f in FORGERIES if f not in PLAIN_ONLY],
    ids=lambda x: x if isinstance(x, str) else ("split" if x.pubkey else "plain"),
)
def test_forged_fields_are_rejected(spec, field):
    rec = run(spec, "python")
    forged = dict(rec, **{field: FORGERIES[field](rec)})
    assert forged != rec
    assert verify(spec.to_args(), files(rec)) is Verdict.VERIFIED
    assert verify(spec.to_args(), files(forged)) is Verdict.REJECTED


def test_consistent_claim_of_a_non_matching_key_is_rejected():
    """A record an honest worker would write for an offset whose address does not match."""
    for off in range(SPEC.count):
        rec = match_record(SPEC, Hit(off, 0))
        if not rec["address"].startswith("1A"):
            break
    assert verify(SPEC.to_args(), files(rec)) is Verdict.REJECTED


def test_claims_outside_the_range_are_rejected(claim):
    spec, rec = claim
    for bad in (spec.count, -1, 10**30, True):
        assert verify(spec.to_args(), files(dict(rec, offset=bad))) is Verdict.REJECTED
    for bad in (6, -1, "1", None):
        assert verify(spec.to_args(), files(dict(rec, candidate=bad))) is Verdict.REJECTED


def test_result_for_another_unit_is_rejected(claim):
    spec, rec = claim
    other = UnitSpec(prefix=spec.prefix, start=spec.start + 1, count=spec.count, pubkey=spec.pubkey)
    assert verify(other.to_args(), files(rec)) is Verdict.REJECTED


@pytest.mark.parametrize(
    "args, fs",
    [
        (["--prefix", "2A"], {"result.json": b"{}"}),
        (SPEC.to_args(), {}),
        (SPEC.to_args(), {"result.json": "not bytes"}),
        (SPEC.to_args(), {"result.json": b"\xff\xfe"}),
        (SPEC.to_args(), {"result.json": b"[1, 2]"}),
        (SPEC.to_args(), {"result.json": b'{"status": "match", "offset": ' + b"9" * 5000 + b"}"}),
        (SPEC.to_args(), {"result.json": b"[" * 100000}),
        (SPEC.to_args(), {"result.json": b" " * 5000}),
        (None, {"result.json": b"{}"}),
        ([1, 2], {"result.json": b"{}"}),
    ],
)
def test_garbage_is_rejected_without_raising(args, fs):
    assert verify(args, fs) is Verdict.REJECTED


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_raises_nor_verifies(value):
    data = json.dumps(value).encode()
    assert verify(SPEC.to_args(), {"result.json": data}) in (Verdict.REJECTED,)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data):
    assert isinstance(verify(SPEC.to_args(), {"result.json": data}), Verdict)


def test_key_zero_claim_is_rejected():
    spec = UnitSpec(prefix="1", start=N - 2, count=5)  # offset 2 is the scalar 0
    rec = match_record(spec, Hit(0, 0))
    forged = dict(rec, offset=2)
    assert verify(spec.to_args(), files(forged)) is Verdict.REJECTED
