"""Deploy the token, the payout distributor and the hub, register apps, fund demo requesters.

``deploy_stack`` is what ``xwpy chain deploy`` runs; ``deploy_demo`` does the same with the
demo accounts of ``accounts.py`` (on the embedded chain or ganache). The result is a
:class:`Deployment`, saved as JSON so the coordinator's oracle and the CLI find the
addresses, and the block to start following events from.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from web3 import Web3

from xwpy.chain.accounts import DemoAccount, demo_accounts
from xwpy.chain.artifacts import load_artifact
from xwpy.chain.contracts import Distributor, Hub, Token, VanityConsumer
from xwpy.chain.tx import TxSender

RLC_DECIMALS = 9
RLC = 10**RLC_DECIMALS

# The pool (the grid's volunteers) gets 30% of each price, the app owner 70%.
DEFAULT_POOL_FEE_BPS = 3_000
# Enough for VanityConsumer.receiveResult to store a result of several hundred bytes (each
# 32-byte word of new storage costs 22,100 gas); bounded so a callback cannot make the
# oracle's commit arbitrarily expensive.
DEFAULT_CALLBACK_GAS = 400_000
DEMO_APPS = {"vanitygen": 10 * RLC}
DEMO_MINT = 1_000 * RLC


@dataclasses.dataclass(frozen=True)
class Deployment:
    chain_id: int
    token: str
    hub: str
    apps: dict[str, int]  # name -> app id
    block: int  # block of the hub's deployment: where event cursors start
    admin: str
    oracle: str
    pool: str
    pool_fee_bps: int
    callback_gas: int
    distributor: str = ""  # the payout distributor (files of older versions have none: no payouts)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Deployment":
        fields = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = required - set(data)
        if missing:
            raise ValueError(f"deployment file lacks {', '.join(sorted(missing))}")
        return cls(**{k: data[k] for k in fields if k in data})

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Deployment":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except OSError as exc:
            raise ValueError(f"cannot read deployment {path}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bad deployment file {path}: {exc}") from None

    def token_at(self, w3: Web3) -> Token:
        return Token(w3, self.token)

    def hub_at(self, w3: Web3) -> Hub:
        return Hub(w3, self.hub)

    def distributor_at(self, w3: Web3) -> Distributor | None:
        return Distributor(w3, self.distributor) if self.distributor else None


def deploy_contract(sender: TxSender, name: str, *args: Any, cache_dir=None) -> tuple[str, Any]:
    """Deploy contract NAME with constructor ARGS; (address, receipt)."""
    artifact = load_artifact(name, cache_dir=cache_dir)
    factory = sender.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = sender.transact(factory.constructor(*args))
    return receipt["contractAddress"], receipt


def deploy_stack(
    w3: Web3,
    deployer: TxSender,
    *,
    oracle: str,
    pool: str | None = None,
    apps: dict[str, tuple[TxSender, int]],
    mint: dict[str, int] | None = None,
    pool_fee_bps: int = DEFAULT_POOL_FEE_BPS,
    callback_gas: int = DEFAULT_CALLBACK_GAS,
    token_name: str = "iExec RLC (xwpy demo)",
    cache_dir=None,
) -> Deployment:
    """Deploy RLC, the payout distributor (its oracle: ORACLE) and the hub; register APPS (name ->
    (owner, price)); mint MINT (address -> amount). The hub pays each task's pool share to POOL,
    by default the distributor (volunteers then claim it per epoch: ``xwpy worker claim``)."""
    token_addr, _ = deploy_contract(deployer, "RLC", token_name, "RLC", cache_dir=cache_dir)
    distributor, _ = deploy_contract(deployer, "Distributor", token_addr, oracle, cache_dir=cache_dir)
    pool = pool or distributor
    hub_addr, receipt = deploy_contract(
        deployer, "TaskHub", token_addr, oracle, pool, pool_fee_bps, callback_gas, cache_dir=cache_dir
    )
    hub = Hub(w3, hub_addr, cache_dir=cache_dir)
    app_ids = {name: hub.register_app(owner, name, price) for name, (owner, price) in apps.items()}
    token = Token(w3, token_addr, cache_dir=cache_dir)
    for address, amount in (mint or {}).items():
        token.mint(deployer, address, amount)
    return Deployment(
        chain_id=w3.eth.chain_id,
        token=token_addr,
        hub=hub_addr,
        apps=app_ids,
        block=receipt["blockNumber"],
        admin=deployer.address,
        oracle=Web3.to_checksum_address(oracle),
        pool=Web3.to_checksum_address(pool),
        pool_fee_bps=pool_fee_bps,
        callback_gas=callback_gas,
        distributor=distributor,
    )


def deploy_demo(w3: Web3, *, accounts: dict[str, DemoAccount] | None = None, cache_dir=None, **kw) -> Deployment:
    """deploy_stack with the demo accounts: the vanitygen app, requesters funded with RLC. The
    hub's pool is the demo account "pool" unless ``pool=None`` is given (then the distributor):
    the contract tests watch the pool's share arrive in an account."""
    acc = accounts or demo_accounts()
    owner = TxSender(w3, acc["app_owner"].key)
    return deploy_stack(
        w3,
        TxSender(w3, acc["deployer"].key),
        oracle=acc["oracle"].address,
        pool=kw.pop("pool", acc["pool"].address),
        apps={name: (owner, price) for name, price in DEMO_APPS.items()},
        mint={acc[r].address: DEMO_MINT for r in ("requester", "requester2")},
        cache_dir=cache_dir,
        **kw,
    )


def deploy_consumer(sender: TxSender, deployment: Deployment, pubkey_hex: str, app: str = "vanitygen", cache_dir=None) -> VanityConsumer:
    """Deploy a VanityConsumer for PUBKEY_HEX (compressed secp256k1, 66 hex characters)."""
    try:
        app_id = deployment.apps[app]
    except KeyError:
        raise ValueError(f"app {app!r} is not registered in this deployment") from None
    address, _ = deploy_contract(
        sender, "VanityConsumer", deployment.hub, deployment.token, app_id, pubkey_hex, cache_dir=cache_dir
    )
    return VanityConsumer(sender.w3, address, cache_dir=cache_dir)
