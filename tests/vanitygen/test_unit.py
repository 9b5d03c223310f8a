import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.apps.vanitygen import kernels, unit
from xwpy.apps.vanitygen.keys import wif_decode
from xwpy.apps.vanitygen.secp256k1 import N, encode, mul
from xwpy.apps.vanitygen.unit import UnitArgsError, UnitSpec, parse_args, result_bytes, run

from .independent import independent_address
from .strategies import scalars

specs = st.builds(
    UnitSpec,
    prefix=st.sampled_from(["1A", "1ab", "11", "1Kid"]),
    start=st.integers(min_value=0, max_value=N - 1),
    count=st.integers(min_value=1, max_value=unit.MAX_COUNT),
    icase=st.booleans(),
    compressed=st.booleans(),
    pubkey=st.one_of(st.none(), st.tuples(scalars, st.booleans()).map(lambda t: encode(mul(t[0]), t[1]))),
)


@given(specs)
def test_args_roundtrip(spec):
    assert parse_args(spec.to_args()) == spec


@pytest.mark.parametrize(
    "args, words",
    [
        ([], "missing --prefix"),
        (["--prefix", "1A", "--count", "5"], "missing --start"),
        (["--prefix", "1A", "--start", "1"], "missing --count"),
        (["--prefix", "1A", "--start", "1", "--count", "5", "--bogus"], "unknown argument '--bogus'"),
        (["--prefix", "1A", "--prefix", "1B", "--start", "1", "--count", "5"], "--prefix given twice"),
        (["--prefix", "1A", "--start", "xyz", "--count", "5"], "--start must be 1 to 64 hexadecimal"),
        (["--prefix", "1A", "--start", "f" * 64, "--count", "5"], "below the group order"),
        (["--prefix", "1A", "--start", "1", "--count", "0"], "--count must be between"),
        (["--prefix", "1A", "--start", "1", "--count", "-3"], "--count must be a decimal"),
        (["--prefix", "1A", "--start", "1", "--count", "١٢"], "--count must be a decimal"),
        (["--prefix", "1A0", "--start", "1", "--count", "5"], "--prefix: prefix '1A0' has characters"),
        (["--prefix", "1A", "--start", "1", "--count", "5", "--pubkey", "02" + "00" * 32], "--pubkey"),
        (["--prefix", "1A", "--start", "1", "--count", "5", "--pubkey", "zz"], "--pubkey must be"),
        (["--prefix", "1A", "--start"], "--start needs a value"),
        ("--prefix 1A", "list of strings"),
        ([b"--prefix"], "list of strings"),
    ],
)
def test_bad_args_name_the_argument(args, words):
    with pytest.raises(UnitArgsError) as info:
        parse_args(args)
    assert words in str(info.value)


@settings(max_examples=200)
@given(st.lists(st.one_of(st.sampled_from(["--prefix", "--start", "--count", "--pubkey", "--icase", "--uncompressed", "1A", "ff", "12"]), st.text(max_size=8)), max_size=10))
def test_parser_never_raises_anything_else(args):
    try:
        parse_args(args)
    except UnitArgsError as exc:
        assert str(exc)


def test_match_record_is_canonical_and_spends_its_address():
    spec = UnitSpec(prefix="1A", start=12345, count=200)
    rec = run(spec, "python")
    assert rec["status"] == "match"
    data = result_bytes(rec)
    assert data == (json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")) + "\n").encode()
    key, compressed = wif_decode(rec["wif"])
    assert compressed and key == int(rec["private_key"], 16)
    assert independent_address(key, True) == rec["address"]
    assert rec["address"].startswith("1A")


@pytest.mark.parametrize("compressed", [True, False])
def test_replicas_agree_byte_for_byte_across_kernels(compressed):
    spec = UnitSpec(prefix="1Ab", start=0xC0FFEE, count=3000, compressed=compressed)
    outputs = {name: result_bytes(run(spec, name)) for name in kernels.available() if name != "reference"}
    assert len(set(outputs.values())) == 1, outputs


def test_no_match_record():
    spec = UnitSpec(prefix="1Love", start=1, count=10)
    rec = run(spec, "python")
    assert rec == {
        "version": 1, "status": "no-match", "prefix": "1Love", "icase": False, "compressed": True,
        "start": f"{1:064x}", "count": 10,
    }


def test_main_writes_result_json_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert unit.main(["--prefix", "1A", "--start", "abc", "--count", "100"]) == 0
    rec = json.loads((tmp_path / "result.json").read_bytes())
    assert rec["status"] == "match" and rec["address"].startswith("1A")


def test_main_reports_bad_args_without_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert unit.main(["--prefix", "2A", "--start", "1", "--count", "1"]) == 2
    assert "does not start with '1'" in capsys.readouterr().err
    assert not (tmp_path / "result.json").exists()
