"""Fixtures for the contract tests: real nodes reached over JSON-RPC.

``node`` is parametrized over the embedded chain (always) and ganache (when installed by
.ci/install-ganache; with XWPY_REQUIRE_GANACHE=1, as CI sets, a missing ganache fails
instead of skipping). Each test gets a fresh deployment (``stack``) on the session's node,
so tests never see each other's contracts; the chains' clocks only move forward, so
deadlines are always computed from the chain's own time.
"""

from __future__ import annotations

import pytest
from chainhelp import Stack, start_chain

from xwpy.chain.accounts import DemoAccount, demo_accounts
from xwpy.chain.deploy import deploy_demo
from xwpy.chain.nodeproc import start_embedded
from xwpy.chain.tx import TxSender


@pytest.fixture(scope="session", params=["embedded", "ganache"])
def node(request):
    n = start_chain(request.param)
    yield n
    n.stop()


@pytest.fixture(scope="session")
def embedded_node():
    n = start_embedded()
    yield n
    n.stop()


@pytest.fixture(scope="session")
def accounts() -> dict[str, DemoAccount]:
    return demo_accounts()


@pytest.fixture(scope="session")
def senders(node, accounts):
    w3 = node.web3()
    return w3, {role: TxSender(w3, a.key) for role, a in accounts.items()}


@pytest.fixture
def stack(senders, accounts) -> Stack:
    w3, tx = senders
    d = deploy_demo(w3, accounts=accounts)
    return Stack(w3, d, d.hub_at(w3), d.token_at(w3), tx, accounts)
