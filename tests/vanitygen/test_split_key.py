"""Split-key mode end to end: the grid finds a partial key from Q alone; the requester combines."""

import json

import pytest

from xwpy.apps.vanitygen import combine
from xwpy.apps.vanitygen.combine import CombineError, combine_parts, combine_record
from xwpy.apps.vanitygen.local import LocalBackend
from xwpy.apps.vanitygen.search import SearchSpec, plan_search, run_search
from xwpy.apps.vanitygen.secp256k1 import N
from xwpy.apps.vanitygen.unit import UnitSpec, run

from .independent import independent_address, independent_wif_key


@pytest.mark.parametrize("compressed", [True, False])
def test_combined_key_controls_the_found_address(compressed):
    q, pub = combine.keygen()
    spec = UnitSpec(prefix="1Ab", start=0x77777, count=20000, compressed=compressed, pubkey=pub)
    rec = run(spec)
    assert rec["status"] == "match"
    assert "wif" not in rec and "private_key" not in rec  # the grid never holds the spending key
    assert f"{q:064x}" not in json.dumps(rec)
    out = combine_record(rec, q)
    key, wif_compressed = independent_wif_key(out.wif)
    assert wif_compressed == compressed
    assert independent_address(key, compressed) == rec["address"] == out.address
    assert out.address.startswith("1Ab")
    # and the partial key alone controls a different address
    partial = int(rec["partial_key"], 16)
    assert independent_address(partial, compressed) != rec["address"]


def test_split_key_search_on_local_workers():
    q, pub = combine.keygen()
    plan = plan_search(SearchSpec("1Ba", pubkey=pub), keys_per_second=50_000, min_unit_seconds=0.5, max_unit_seconds=1)
    with LocalBackend(2, "python") as backend:
        found = run_search(plan, backend, parallel=2)
    out = combine_record(found, q)
    assert independent_address(*independent_wif_key(out.wif)) == found["address"]
    assert found["address"].startswith("1Ba")


def test_wrong_secret_is_refused():
    q, pub = combine.keygen()
    rec = run(UnitSpec(prefix="1A", start=5, count=500, pubkey=pub))
    with pytest.raises(CombineError, match="does not belong"):
        combine_record(rec, (q + 1) % N)


def test_altered_record_is_refused():
    q, pub = combine.keygen()
    rec = run(UnitSpec(prefix="1A", start=5, count=500, pubkey=pub))
    forged = dict(rec, partial_key=f"{int(rec['partial_key'], 16) + 1:064x}")
    with pytest.raises(CombineError, match="not the record's"):
        combine_record(forged, q)


def test_plain_record_is_not_combinable():
    rec = run(UnitSpec(prefix="1A", start=5, count=500))
    with pytest.raises(CombineError, match="not from a split-key search"):
        combine_record(rec, 12345)


def test_combine_parts_checks_ranges():
    with pytest.raises(CombineError, match="cancel out"):
        combine_parts(N - 7, 0, 7)
    with pytest.raises(CombineError, match="candidate"):
        combine_parts(1, 6, 7)
