"""The click commands, run in-process with CliRunner; addresses re-derived independently."""

import json
import re

import pytest
from click.testing import CliRunner

from xwpy.apps.vanitygen.cli import vanity

from .independent import independent_address, independent_wif_key


@pytest.fixture
def runner():
    return CliRunner()


def field(output, name):
    m = re.search(rf"^{re.escape(name)}: (\S+)", output, re.M)
    assert m, f"no {name!r} in {output!r}"
    return m.group(1)


def test_estimate_prints_exact_difficulty(runner):
    res = runner.invoke(vanity, ["estimate", "1Abc", "--rate", "1000"])
    assert res.exit_code == 0, res.output
    assert "expected tries:   77,178" in res.output
    assert "at 1k keys/s (given): 50% in" in res.output


def test_estimate_measures_this_machine_without_rate(runner):
    res = runner.invoke(vanity, ["estimate", "1Ab", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "this machine: 1 x" in res.output


@pytest.mark.parametrize(
    "prefix, words",
    [("1O0", "not base58"), ("3xyz", "does not start with '1'"), ("1" * 25, "at most 21")],
)
def test_bad_prefix_is_a_usage_error_with_the_reason(runner, prefix, words):
    res = runner.invoke(vanity, ["estimate", prefix])
    assert res.exit_code == 2
    assert words in res.output
    assert "Traceback" not in res.output


def test_local_search_prints_a_working_key(runner):
    res = runner.invoke(vanity, ["local", "1Ab", "--workers", "2", "--kernel", "python"])
    assert res.exit_code == 0, res.output
    addr, wif = field(res.output, "address"), field(res.output, "private key (WIF)")
    key, compressed = independent_wif_key(wif)
    assert addr.startswith("1Ab") and independent_address(key, compressed) == addr


def test_local_uncompressed_icase(runner):
    res = runner.invoke(vanity, ["local", "1ab", "--icase", "--uncompressed", "-w", "1"])
    assert res.exit_code == 0, res.output
    addr, wif = field(res.output, "address"), field(res.output, "private key (WIF)")
    key, compressed = independent_wif_key(wif)
    assert not compressed
    assert addr[:3].lower() == "1ab" and independent_address(key, False) == addr


def test_split_key_flow_keygen_local_combine(runner, tmp_path):
    secret = tmp_path / "q.key"
    res = runner.invoke(vanity, ["keygen", "--out", str(secret)])
    assert res.exit_code == 0, res.output
    pub = res.stdout.strip().splitlines()[0]
    assert (secret.stat().st_mode & 0o777) == 0o600
    assert secret.read_text().strip() not in res.output

    result = tmp_path / "result.json"
    res = runner.invoke(vanity, ["local", "1Ac", "--split-key", pub, "-w", "1", "--out", str(result)])
    assert res.exit_code == 0, res.output
    addr = field(res.output, "address")
    assert "private key" not in res.output
    rec = json.loads(result.read_bytes())
    assert rec["address"] == addr and rec["pubkey"] == pub

    res = runner.invoke(vanity, ["combine", "--secret", str(secret), "--result", str(result)])
    assert res.exit_code == 0, res.output
    key, compressed = independent_wif_key(field(res.output, "private key (WIF)"))
    assert independent_address(key, compressed) == addr == field(res.output, "address")

    res = runner.invoke(
        vanity,
        ["combine", "--secret", str(secret), "--partial", rec["partial_key"], "--candidate", str(rec["candidate"])],
    )
    assert res.exit_code == 0, res.output
    assert field(res.output, "address") == addr


def test_keygen_refuses_to_overwrite(runner, tmp_path):
    secret = tmp_path / "q.key"
    secret.write_text("precious\n")
    res = runner.invoke(vanity, ["keygen", "--out", str(secret)])
    assert res.exit_code == 1 and "refusing to overwrite" in res.output
    assert secret.read_text() == "precious\n"


def test_combine_with_the_wrong_secret_fails_clearly(runner, tmp_path):
    good, bad = tmp_path / "good.key", tmp_path / "bad.key"
    pub = runner.invoke(vanity, ["keygen", "--out", str(good)]).stdout.split()[0]
    runner.invoke(vanity, ["keygen", "--out", str(bad)])
    result = tmp_path / "r.json"
    assert runner.invoke(vanity, ["local", "1A", "--split-key", pub, "-w", "1", "--out", str(result)]).exit_code == 0
    res = runner.invoke(vanity, ["combine", "--secret", str(bad), "--result", str(result)])
    assert res.exit_code == 1
    assert "does not belong to the public key" in res.output


def test_combine_needs_result_or_parts(runner, tmp_path):
    secret = tmp_path / "q.key"
    runner.invoke(vanity, ["keygen", "--out", str(secret)])
    res = runner.invoke(vanity, ["combine", "--secret", str(secret)])
    assert res.exit_code == 2 and "--partial and --candidate" in res.output


def test_bad_split_key_is_a_usage_error(runner):
    res = runner.invoke(vanity, ["local", "1A", "--split-key", "02abcd"])
    assert res.exit_code == 2 and "--split-key" in res.output


def test_local_gives_up_after_max_keys(runner):
    res = runner.invoke(vanity, ["local", "1" * 10, "-w", "1", "--kernel", "python", "--max-keys", "1000"])
    assert res.exit_code == 1 and "no match within 1,000 keys" in res.output
