"""Helpers shared by the chain tests (imported as a plain module: tests/chain is on sys.path)."""

from __future__ import annotations

import dataclasses
import os

import pytest
from web3 import Web3

from xwpy.chain import nodeproc
from xwpy.chain.accounts import DemoAccount
from xwpy.chain.contracts import Hub, Token
from xwpy.chain.deploy import Deployment, deploy_contract
from xwpy.chain.node import advance_time, latest_timestamp
from xwpy.chain.nodeproc import NodeProcess
from xwpy.chain.tx import TxReverted, TxSender


def require_ganache() -> bool:
    return os.environ.get("XWPY_REQUIRE_GANACHE") == "1"


def start_chain(kind: str) -> NodeProcess:
    """The embedded chain, or ganache: skipped when missing, failed when CI requires it."""
    if kind == "embedded":
        return nodeproc.start_embedded()
    if nodeproc.ganache_dir() is None:
        if require_ganache():
            pytest.fail("XWPY_REQUIRE_GANACHE=1 but ganache is not installed: run .ci/install-ganache")
        pytest.skip("ganache not installed (run .ci/install-ganache)")
    return nodeproc.start_ganache()


# Gas for transactions that must reach the chain even though they revert: proves the
# contract itself refuses, not just the client's gas estimation.
FORCE_GAS = 1_500_000



@dataclasses.dataclass
class Stack:
    """A fresh token + hub deployment and one TxSender per demo role."""

    w3: Web3
    deployment: Deployment
    hub: Hub
    token: Token
    tx: dict[str, TxSender]
    accounts: dict[str, DemoAccount]

    @property
    def app_id(self) -> int:
        return self.deployment.apps["vanitygen"]

    @property
    def price(self) -> int:
        return self.hub.app(self.app_id).price

    def addr(self, role: str) -> str:
        return self.accounts[role].address

    def now(self) -> int:
        return latest_timestamp(self.w3)

    def advance(self, seconds: int) -> int:
        return advance_time(self.w3, seconds)

    def balances(self, *roles_or_addresses: str) -> dict[str, int]:
        out = {}
        for r in roles_or_addresses:
            address = self.accounts[r].address if r in self.accounts else r
            out[r] = self.token.balance_of(address)
        return out

    def request(self, role: str = "requester", *, callback: str | None = None, params: bytes = b'{"prefix":"1x"}', ttl: int = 3600, app_id: int | None = None) -> tuple[int, int]:
        """Approve and request as ROLE; (task id, deadline)."""
        app_id = self.app_id if app_id is None else app_id
        price = self.hub.app(app_id).price
        self.token.approve(self.tx[role], self.hub.address, price)
        deadline = self.now() + ttl
        return self.hub.request(self.tx[role], app_id, params, callback, deadline), deadline

    def deploy(self, name: str, *args, role: str = "deployer") -> str:
        address, _ = deploy_contract(self.tx[role], name, *args)
        return address

    def contract(self, name: str, address: str):
        from xwpy.chain.artifacts import load_artifact

        return self.w3.eth.contract(address=address, abi=load_artifact(name).abi)


def reverts(fn, reason: str, *, mined: bool = True):
    """Run FN (a transaction); assert it reverted with REASON, mined on-chain if MINED."""
    with pytest.raises(TxReverted) as info:
        fn()
    assert reason in str(info.value), str(info.value)
    if mined:
        assert info.value.receipt is not None and info.value.receipt["status"] == 0
    return info.value
