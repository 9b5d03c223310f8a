"""Fixtures for the oracle's in-process tests: a real chain node (a child process: the embedded
chain, and ganache when installed; with XWPY_REQUIRE_GANACHE=1 a missing ganache fails), a real
catalog (SQLite), and the oracle's own chain link on the reactor of pytest-twisted."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import pytest_twisted
from twisted.internet import reactor
from web3 import Web3

from xwpy.chain import nodeproc
from xwpy.chain.accounts import DemoAccount, demo_accounts
from xwpy.chain.contracts import Hub, Token
from xwpy.chain.deploy import Deployment, deploy_demo
from xwpy.chain.node import advance_time, latest_timestamp
from xwpy.chain.tx import TxSender
from xwpy.oracle.chainlink import ChainLink
from xwpy.server.catalog.connector import Catalog
from tests.grid.conftest import grid, pytest_runtest_makereport  # noqa: F401 - real processes, logs on failure

HASHCHAIN_PRICE = 10**9


def start_chain(kind: str, **kw) -> nodeproc.NodeProcess:
    """The embedded chain, or ganache: skipped when missing, failed when CI requires it."""
    if kind == "embedded":
        return nodeproc.start_embedded(kw.get("state_dir"), port=kw.get("port", 0))
    if nodeproc.ganache_dir() is None:
        if os.environ.get("XWPY_REQUIRE_GANACHE") == "1":
            pytest.fail("XWPY_REQUIRE_GANACHE=1 but ganache is not installed: run .ci/install-ganache")
        pytest.skip("ganache not installed (run .ci/install-ganache)")
    return nodeproc.start_ganache(db_path=kw.get("db_path"), port=kw.get("port", 0))


@pytest.fixture(scope="session", params=["embedded", "ganache"])
def node(request):
    n = start_chain(request.param)
    yield n
    n.stop()


@dataclass
class Stack:
    w3: Web3
    deployment: Deployment
    accounts: dict[str, DemoAccount]

    @property
    def hub(self) -> Hub:
        return self.deployment.hub_at(self.w3)

    @property
    def token(self) -> Token:
        return self.deployment.token_at(self.w3)

    def sender(self, role: str) -> TxSender:
        return TxSender(self.w3, self.accounts[role].key)

    def now(self) -> int:
        return latest_timestamp(self.w3)

    def advance(self, seconds: int) -> int:
        return advance_time(self.w3, seconds)

    def request(self, app: str = "vanitygen", params: bytes = b'{"prefix":"1x"}', *, ttl: int = 3600, role: str = "requester") -> int:
        hub, sender = self.hub, self.sender(role)
        app_id = self.deployment.apps[app]
        self.token.approve(sender, hub.address, hub.app(app_id).price)
        return hub.request(sender, app_id, params, None, self.now() + ttl)


def deploy(w3: Web3) -> Stack:
    acc = demo_accounts()
    d = deploy_demo(w3, accounts=acc)
    # A second app, as the oracle's own demo deployment registers it.
    hub = d.hub_at(w3)
    app_id = hub.register_app(TxSender(w3, acc["app_owner"].key), "hashchain", HASHCHAIN_PRICE)
    d = Deployment(**{**d.to_json(), "apps": {**d.apps, "hashchain": app_id}})
    return Stack(w3, d, acc)


@pytest.fixture
def stack(node) -> Stack:
    return deploy(node.web3())


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}", reactor)
    yield cat
    pytest_twisted.blockon(cat.close())


@pytest.fixture
def make_link():
    """ChainLink factory: a fresh one is a restarted oracle (its own nonce bookkeeping)."""
    links = []

    def make(w3: Web3, deployment: Deployment, key: bytes | None = None, **kw) -> ChainLink:
        link = ChainLink(w3, deployment, key or demo_accounts()["oracle"].key, reactor, **kw)
        link.start()
        links.append(link)
        return link

    yield make
    for link in links:
        link.stop()


@pytest.fixture(scope="session")
def ganache_node():
    n = start_chain("ganache")
    yield n
    n.stop()


@pytest.fixture
def hardhat_node():
    """A node that queues transactions as geth does (hardhat, automining off once the stack is
    deployed: blocks are mined when a test says so); skipped when missing, failed when
    XWPY_REQUIRE_HARDHAT=1."""
    if nodeproc.hardhat_dir() is None:
        if os.environ.get("XWPY_REQUIRE_HARDHAT") == "1":
            pytest.fail("XWPY_REQUIRE_HARDHAT=1 but hardhat is not installed: run .ci/install-hardhat")
        pytest.skip("hardhat not installed (run .ci/install-hardhat)")
    n = nodeproc.start_hardhat()
    yield n
    n.stop()


def mine(w3: Web3, blocks: int = 1) -> None:
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])


def automine(w3: Web3, on: bool) -> None:
    assert "error" not in w3.provider.make_request("evm_setAutomine", [on])
