"""Deterministic demo accounts shared by the embedded chain and ganache.

Each key is keccak256 of a fixed label, so every run, every machine and both chains (the
embedded one funds them in its genesis, ganache gets them with ``--wallet.accounts``) know
the same addresses. These keys are public: they exist for demos and tests on local chains
and must never hold anything of value. ``DemoAccount.__repr__`` still leaves the key out, so
a log line never carries it.
"""

from __future__ import annotations

import dataclasses

from eth_account import Account
from eth_utils import keccak

# Roles of the demo: the deployer is the token minter and hub admin.
ROLES = ("deployer", "oracle", "app_owner", "pool", "requester", "requester2", "stranger")

# Ether given to each demo account at genesis: plenty for gas, an obviously fake amount.
DEMO_ETH_WEI = 10_000 * 10**18

# The chains the demo keys are for: the embedded one (eth-tester's id), ganache and hardhat as
# the tests start them. Anywhere else the keys are refused: anyone can sign with them, so a
# deployment on a public test net whose admin or oracle they are belongs to everybody.
EMBEDDED_CHAIN_ID = 131277322940537
GANACHE_CHAIN_ID = 1337
HARDHAT_CHAIN_ID = 31337
LOCAL_CHAIN_IDS = frozenset({EMBEDDED_CHAIN_ID, GANACHE_CHAIN_ID, HARDHAT_CHAIN_ID})


def check_demo_chain(chain_id: int) -> None:
    """Raise ValueError unless CHAIN_ID is a local chain, where the public demo keys may sign."""
    if chain_id not in LOCAL_CHAIN_IDS:
        local = ", ".join(str(c) for c in sorted(LOCAL_CHAIN_IDS))
        raise ValueError(f"the demo accounts' keys are public: refused on chain {chain_id} (local chains only: {local})")


@dataclasses.dataclass(frozen=True)
class DemoAccount:
    role: str
    address: str  # checksummed
    key: bytes = dataclasses.field(repr=False)

    @property
    def key_hex(self) -> str:
        return "0x" + self.key.hex()


def demo_key(role: str) -> bytes:
    return keccak(text=f"xwpy demo account: {role}")


def demo_account(role: str) -> DemoAccount:
    key = demo_key(role)
    return DemoAccount(role=role, address=Account.from_key(key).address, key=key)


def demo_accounts() -> dict[str, DemoAccount]:
    """All demo accounts by role, in ROLES order."""
    return {role: demo_account(role) for role in ROLES}
