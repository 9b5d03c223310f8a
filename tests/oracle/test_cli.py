"""``xwpy chain`` against a real node (the embedded chain in a child process, no oracle): deploy,
order, follow, refund; and every mistake is one line on stderr with exit status 1."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from xwpy.apps.vanitygen import combine
from xwpy.chain.accounts import demo_accounts
from xwpy.chain.node import advance_time, connect
from xwpy.chain.nodeproc import start_embedded
from xwpy.client.chainclient import ChainClientError, format_rlc, parse_rlc
from xwpy.client.cli import cli
from xwpy.client.commands import register
from xwpy.localgrid import free_port
from xwpy.oracle.chainsetup import write_key_file

register(cli)
ACC = demo_accounts()


@pytest.fixture(scope="module")
def chain_node():
    node = start_embedded()
    yield node
    node.stop()


@pytest.fixture
def deployed(chain_node, tmp_path):
    path = tmp_path / "deployment.json"
    out = xwpy("--rpc", chain_node.url, "deploy", "--account", "deployer", "--out", str(path), "--json")
    return chain_node.url, path, json.loads(out.output)


def xwpy(*args, code: int = 0, site=None):
    argv = (["--site", str(site)] if site else []) + ["chain", *args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == code, result.output
    if code:
        assert "Traceback" not in result.output and result.output.startswith("xwpy: error: ")
        assert len(result.output.strip().splitlines()) == 1
    return result


def test_deploy_registers_the_oracles_apps_with_the_demo_roles(deployed):
    url, path, d = deployed
    assert json.loads(path.read_text()) == d
    assert set(d["apps"]) == {"vanitygen", "hashchain"} and d["apps"]["vanitygen"] == 1
    # The hub pays the pool's share to the payout distributor the deploy made (the oracle commits its epochs).
    assert (d["oracle"], d["pool"], d["admin"]) == (ACC["oracle"].address, d["distributor"], ACC["deployer"].address)


def test_a_request_without_an_oracle_is_refunded_after_its_deadline(deployed):
    url, path, d = deployed
    base = ("--rpc", url, "--deployment", str(path))
    xwpy(*base, "deploy", "--account", "deployer", "--out", str(path), "--mint", f"{ACC['requester'].address}=5")
    out = xwpy(*base, "request", "hashchain", '{"text":"x","rounds":1}', "--account", "requester", "--ttl", "60",
               "--no-wait", "--json")
    task = json.loads(out.output)
    status = json.loads(xwpy(*base, "status", str(task["task"]), "--json").output)
    assert (status["status"], status["app"], status["price"], status["requester"]) == (
        "REQUESTED", "hashchain", 10**9, ACC["requester"].address)
    assert "deadline not passed" in xwpy(*base, "refund", str(task["task"]), "--account", "requester", code=1).output
    advance_time(connect(url), 120)
    assert "refunded 1 RLC" in xwpy(*base, "refund", str(task["task"]), "--account", "requester").output
    text = xwpy(*base, "status", str(task["task"])).output
    assert "REFUNDED" in text and "refunded  1 RLC" in text


def test_a_vanity_order_goes_through_the_consumer_and_is_reclaimed_from_it(deployed):
    url, path, d = deployed
    base = ("--rpc", url, "--deployment", str(path))
    _, pub = combine.keygen()
    consumer = xwpy(*base, "consumer", pub.hex(), "--account", "requester2").output.strip()
    out = xwpy(*base, "request", "vanitygen", "1x", "--consumer", consumer, "--account", "requester2", "--ttl", "60",
               "--no-wait", "--json")
    task = json.loads(out.output)["task"]
    status = json.loads(xwpy(*base, "status", str(task), "--consumer", consumer, "--json").output)
    assert status["callback"] == consumer and status["consumer_result"] is None and status["price"] == 10 * 10**9
    advance_time(connect(url), 120)
    assert "refunded 10 RLC" in xwpy(*base, "refund", str(task), "--consumer", consumer, "--account", "requester2").output


@pytest.mark.parametrize(
    "args,needle",
    [
        (("status", "1"), "no chain given"),
        (("--rpc", "ftp://x", "status", "1"), "http:// or https://"),
        (("--rpc", "http://127.0.0.1:{port}", "--deployment", "{path}", "status", "1"), "cannot reach the chain"),
        (("--rpc", "{url}", "status", "1"), "no deployment"),
        (("--rpc", "{url}", "--deployment", "{path}", "status", "99"), "no task 99"),
        (("--rpc", "{url}", "--deployment", "{path}", "request", "hashchain", "{{nope", "--account", "requester"), "PARAMS must be JSON"),
        (("--rpc", "{url}", "--deployment", "{path}", "request", "nope", "{{}}", "--account", "requester"), "no app 'nope'"),
        (("--rpc", "{url}", "--deployment", "{path}", "request", "hashchain", "{{}}", "--account", "stranger"), "holds 0 RLC"),
        (("--rpc", "{url}", "--deployment", "{path}", "request", "hashchain", "{{}}"), "give --key-file FILE, or --account"),
        (("--rpc", "{url}", "--deployment", "{path}", "request", "hashchain", "{{}}", "--account", "requester", "--key-file", "{key}"), "not both"),
        (("--rpc", "{url}", "--deployment", "{path}", "request", "hashchain", "{{}}", "--key-file", "{openkey}"), "readable by others"),
        (("--rpc", "{url}", "--deployment", "{path}", "request", "vanitygen", "1x", "--consumer", "0x12", "--account", "requester"), "consumer address"),
        (("--rpc", "{url}", "--deployment", "{path}", "consumer", "04abcd", "--account", "deployer"), "consumer: pubkey"),
        (("--rpc", "{url}", "deploy", "--account", "deployer", "--out", "{out}", "--app", "x=-1"), "not an amount"),
        (("--rpc", "{url}", "deploy", "--account", "deployer", "--out", "{out}", "--app", "x=1e-10"), "finer than"),
        (("--rpc", "{url}", "deploy", "--key-file", "{key}", "--out", "{out}"), "give --oracle ADDRESS"),
        (("--rpc", "{url}", "--deployment", "{missing}", "status", "1"), "cannot read deployment"),
    ],
)
def test_mistakes_are_one_line_and_exit_1(deployed, tmp_path, args, needle):
    url, path, _ = deployed
    key, openkey = tmp_path / "k", tmp_path / "open"
    write_key_file(key, ACC["stranger"].key)
    write_key_file(openkey, ACC["stranger"].key)
    os.chmod(openkey, 0o644)
    fill = dict(url=url, path=path, port=free_port(), key=key, openkey=openkey, out=tmp_path / "d.json",
                missing=tmp_path / "missing.json")
    # (a node that does not answer is the one mistake that is not the command's own)
    out = xwpy(*[a.format(**fill) for a in args], code=6 if needle == "cannot reach the chain" else 1)
    assert needle in out.output
    assert ACC["stranger"].key.hex() not in out.output


@given(st.integers(0, 10**30))
def test_rlc_amounts_round_trip(units):
    text = format_rlc(units)
    assert text.endswith(" RLC") and parse_rlc(text[:-4]) == units


@pytest.mark.parametrize("text", ["", "x", "-1", "nan", "inf", "1e-10", "0.0000000001"])
def test_bad_rlc_amounts(text):
    with pytest.raises(ChainClientError):
        parse_rlc(text)


def test_demo_keys_are_refused_on_a_chain_that_is_not_local(chain_node, tmp_path):
    """Issue 18, 7: `--account` on a public test net's chain id made the public demo keys its
    hub's admin and oracle. ganache started as Sepolia (chain 11155111) stands for that net."""
    from xwpy.chain import nodeproc
    from xwpy.chain.accounts import EMBEDDED_CHAIN_ID

    assert connect(chain_node.url).eth.chain_id == EMBEDDED_CHAIN_ID  # the constant is the chain's
    if nodeproc.ganache_dir() is None and os.environ.get("XWPY_REQUIRE_GANACHE") != "1":
        pytest.skip("ganache not installed (run .ci/install-ganache)")
    node = nodeproc.start_ganache(chain_id=11155111)
    try:
        out = xwpy("--rpc", node.url, "deploy", "--account", "deployer", "--out", str(tmp_path / "d.json"), code=1)
        assert "refused on chain 11155111" in out.output and "--key-file" in out.output
        assert not (tmp_path / "d.json").exists()
        key = tmp_path / "deployer.key"
        write_key_file(key, ACC["deployer"].key)  # a key of one's own is the operator's business
        xwpy("--rpc", node.url, "deploy", "--key-file", str(key), "--oracle", ACC["oracle"].address,
             "--pool", ACC["pool"].address, "--out", str(tmp_path / "d.json"))
    finally:
        node.stop()
