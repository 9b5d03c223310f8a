"""Starting and stopping nodes: ganache's own persistence, start failures, the CI switch."""

from __future__ import annotations

import sys

import pytest

import chainhelp
from xwpy.chain import nodeproc
from xwpy.chain.accounts import DEMO_ETH_WEI, demo_accounts
from xwpy.chain.deploy import deploy_demo
from xwpy.chain.node import NodeUnavailable


def test_ganache_keeps_its_chain_across_a_restart(tmp_path):
    if nodeproc.ganache_dir() is None:
        if chainhelp.require_ganache():
            pytest.fail("XWPY_REQUIRE_GANACHE=1 but ganache is not installed")
        pytest.skip("ganache not installed (run .ci/install-ganache)")
    db = str(tmp_path / "ganache-db")
    with nodeproc.start_ganache(db_path=db) as node:
        w3 = node.web3()
        assert w3.eth.chain_id == nodeproc.GANACHE_CHAIN_ID
        assert w3.eth.get_balance(demo_accounts()["stranger"].address) == DEMO_ETH_WEI
        d = deploy_demo(w3)
        head = w3.eth.get_block("latest")
    with nodeproc.start_ganache(db_path=db) as node:
        w3 = node.web3()
        assert w3.eth.get_block("latest")["hash"] == head["hash"]
        assert d.hub_at(w3).app(d.apps["vanitygen"]).name == "vanitygen"


def test_a_node_that_dies_at_start_is_reported_with_its_stderr():
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no chain today'); sys.exit(3)"]
    with pytest.raises(NodeUnavailable, match="boom: no chain today"):
        nodeproc.start_node("broken", argv, timeout=30)


def test_a_node_that_prints_something_else_is_refused():
    argv = [sys.executable, "-c", "print('hello'); import time; time.sleep(60)"]
    with pytest.raises(NodeUnavailable, match="failed to start.*hello"):
        nodeproc.start_node("chatty", argv, timeout=30)


def test_embedded_refuses_a_public_interface_without_token(tmp_path):
    argv = [sys.executable, "-m", "xwpy.chain.serve", "--port", "0", "--interface", "0.0.0.0"]
    with pytest.raises(NodeUnavailable, match="without a token"):
        nodeproc.start_node("embedded-public", argv, timeout=60)


def test_missing_ganache_skips_or_fails_as_ci_asks(monkeypatch):
    monkeypatch.setattr(nodeproc, "ganache_dir", lambda: None)
    monkeypatch.delenv("XWPY_REQUIRE_GANACHE", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chainhelp.start_chain("ganache")
    monkeypatch.setenv("XWPY_REQUIRE_GANACHE", "1")
    with pytest.raises(pytest.fail.Exception, match="XWPY_REQUIRE_GANACHE=1"):
        chainhelp.start_chain("ganache")
