"""Typed wrappers over the deployed contracts: plain values in, dataclasses out.

Reads are ``eth_call``s; writes take a :class:`~xwpy.chain.tx.TxSender` (whose key signs)
and return what the transaction produced (an id, a decoded event), raising
:class:`~xwpy.chain.tx.TxReverted` with the contract's reason when it refuses. Everything
blocks: call it off the reactor thread.

The oracle needs exactly: ``Hub.requested_events`` (follow requests from a block cursor),
``Hub.task`` (check state before committing), ``Hub.commit`` (send the result) and
``Hub.completed_events`` (see what was committed).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3
from web3.logs import DISCARD

from xwpy.chain.artifacts import load_artifact
from xwpy.chain.tx import TxSender

BPS = 10_000
# Bounds of TaskHub's Bytes[] arguments (checked against the source by the tests). The ABI
# only says "bytes", so without this check an oversized value is sent and reverts on-chain.
MAX_PARAMS = 1024
MAX_RESULT = 1024
ZERO_ADDRESS = "0x" + "00" * 20
# TaskHub's CALLBACK_OVERHEAD: gas around the callback's CALL, paid by the callback fee too.
CALLBACK_OVERHEAD = 20_000


class TaskStatus(enum.IntEnum):
    NONE = 0
    REQUESTED = 1
    COMPLETED = 2
    REFUNDED = 3


def fee_split(price: int, pool_fee_bps: int) -> tuple[int, int]:
    """(to app owner, to pool) for PRICE, exactly as TaskHub.commit pays it."""
    if price < 0 or not 0 <= pool_fee_bps <= BPS:
        raise ValueError(f"bad price {price} or pool fee {pool_fee_bps} bps")
    to_pool = price * pool_fee_bps // BPS
    return price - to_pool, to_pool


def request_hash(app_id: int, requester: str, callback: str | None, params: bytes, deadline: int, price: int,
                 callback_fee: int) -> bytes:
    """TaskHub's requestHash: what a commit names besides the task id (a reorganisation can give
    the id to another request)."""
    return keccak(abi_encode(
        ["uint256", "address", "address", "bytes", "uint256", "uint256", "uint256"],
        [app_id, requester, callback or ZERO_ADDRESS, params, deadline, price, callback_fee],
    ))


def callback_fee_for(w3: Web3, callback_gas: int, *, headroom: int = 2) -> int:
    """A callback fee that buys CALLBACK_GAS at HEADROOM times the node's gas price now (the
    commit comes later, when fees may have risen)."""
    return (callback_gas + CALLBACK_OVERHEAD) * max(w3.eth.gas_price, 1) * headroom


@dataclasses.dataclass(frozen=True)
class AppInfo:
    app_id: int
    owner: str
    price: int
    name: str


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    task_id: int
    app_id: int
    requester: str
    callback: str
    price: int
    deadline: int
    status: TaskStatus
    digest: bytes
    request_hash: bytes = b""
    callback_fee: int = 0


@dataclasses.dataclass(frozen=True)
class EventRef:
    """Where an event sits on the chain: enough to order, dedupe and detect reorgs."""

    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int


@dataclasses.dataclass(frozen=True)
class TaskRequested:
    task_id: int
    app_id: int
    requester: str
    callback: str
    params: bytes
    deadline: int
    price: int
    ref: EventRef
    callback_fee: int = 0
    request_hash: bytes = b""


@dataclasses.dataclass(frozen=True)
class TaskCompleted:
    task_id: int
    digest: bytes
    result: bytes
    callback_ok: bool
    ref: EventRef


@dataclasses.dataclass(frozen=True)
class TaskRefunded:
    task_id: int
    requester: str
    amount: int
    ref: EventRef


def _ref(event: Any) -> EventRef:
    return EventRef(
        block_number=event["blockNumber"],
        block_hash=bytes(event["blockHash"]),
        tx_hash=bytes(event["transactionHash"]),
        log_index=event["logIndex"],
    )


class _Bound:
    NAME = ""

    def __init__(self, w3: Web3, address: str, *, cache_dir=None):
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact(self.NAME, cache_dir=cache_dir).abi)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address})"

    def _one_event(self, name: str, receipt) -> Any:
        """The single NAME event this contract logged in RECEIPT."""
        event = getattr(self.contract.events, name)()
        found = [e for e in event.process_receipt(receipt, errors=DISCARD) if e["address"] == self.address]
        if len(found) != 1:
            raise LookupError(f"expected one {name} event from {self.address}, found {len(found)}")
        return found[0]

    def _events(self, name: str, from_block: int, to_block: int | str, filters: dict | None = None):
        event = getattr(self.contract.events, name)
        logs = event.get_logs(argument_filters=filters, from_block=from_block, to_block=to_block)
        return sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]))


class Token(_Bound):
    NAME = "RLC"

    def balance_of(self, owner: str) -> int:
        return self.contract.functions.balanceOf(owner).call()

    def allowance(self, owner: str, spender: str) -> int:
        return self.contract.functions.allowance(owner, spender).call()

    def total_supply(self) -> int:
        return self.contract.functions.totalSupply().call()

    def decimals(self) -> int:
        return self.contract.functions.decimals().call()

    def symbol(self) -> str:
        return self.contract.functions.symbol().call()

    def transfer(self, sender: TxSender, to: str, amount: int, **kw):
        return sender.transact(self.contract.functions.transfer(to, amount), **kw)

    def approve(self, sender: TxSender, spender: str, amount: int, **kw):
        return sender.transact(self.contract.functions.approve(spender, amount), **kw)

    def transfer_from(self, sender: TxSender, owner: str, to: str, amount: int, **kw):
        return sender.transact(self.contract.functions.transferFrom(owner, to, amount), **kw)

    def mint(self, sender: TxSender, to: str, amount: int, **kw):
        return sender.transact(self.contract.functions.mint(to, amount), **kw)


class Hub(_Bound):
    NAME = "TaskHub"

    # --- reads -------------------------------------------------------------------------

    def token(self) -> str:
        return self.contract.functions.token().call()

    def oracle(self) -> str:
        return self.contract.functions.oracle().call()

    def pool(self) -> str:
        return self.contract.functions.pool().call()

    def admin(self) -> str:
        return self.contract.functions.admin().call()

    def pool_fee_bps(self) -> int:
        return self.contract.functions.poolFeeBps().call()

    def callback_gas(self) -> int:
        return self.contract.functions.callbackGas().call()

    def app_count(self) -> int:
        return self.contract.functions.appCount().call()

    def task_count(self) -> int:
        return self.contract.functions.taskCount().call()

    def app(self, app_id: int) -> AppInfo | None:
        owner, price, name = self.contract.functions.apps(app_id).call()
        if owner == ZERO_ADDRESS:
            return None
        return AppInfo(app_id, owner, price, name)

    def task(self, task_id: int, block: int | str = "latest") -> TaskInfo:
        """The task's on-chain record; status NONE for an id never requested."""
        app_id, requester, callback, price, deadline, status, digest, req_hash, fee = self.contract.functions.tasks(
            task_id).call(block_identifier=block)
        return TaskInfo(task_id, app_id, requester, callback, price, deadline, TaskStatus(status), bytes(digest),
                        bytes(req_hash), fee)

    def pool_share(self, price: int) -> int:
        return self.contract.functions.poolShare(price).call()

    # --- writes ------------------------------------------------------------------------

    def register_app(self, sender: TxSender, name: str, price: int, **kw) -> int:
        receipt = sender.transact(self.contract.functions.registerApp(name, price), **kw)
        event = self._one_event("AppRegistered", receipt)
        return event["args"]["appId"]

    def set_app_price(self, sender: TxSender, app_id: int, price: int, **kw):
        return sender.transact(self.contract.functions.setAppPrice(app_id, price), **kw)

    def request(self, sender: TxSender, app_id: int, params: bytes, callback: str | None, deadline: int, *,
                max_price: int | None = None, fee: int = 0, **kw) -> int:
        """Open a task (the price must be approved for the hub); returns the task id.

        MAX_PRICE: the most paid (default: the app's price read now, so a price raised before the
        request is mined makes it revert). FEE: ether for the callback's gas.
        """
        if len(params) > MAX_PARAMS:
            raise ValueError(f"params of {len(params)} bytes: the hub takes at most {MAX_PARAMS}")
        if max_price is None:
            app = self.app(app_id)
            max_price = 0 if app is None else app.price
        fn = self.contract.functions.request(app_id, params, callback or ZERO_ADDRESS, deadline, max_price)
        receipt = sender.transact(fn, value=fee, **kw)
        event = self._one_event("TaskRequested", receipt)
        return event["args"]["taskId"]

    def commit_call(self, task_id: int, request_hash: bytes, digest: bytes, result: bytes):
        if len(digest) != 32 or len(request_hash) != 32:
            raise ValueError(f"digest and request hash must be 32 bytes, got {len(digest)} and {len(request_hash)}")
        if len(result) > MAX_RESULT:
            raise ValueError(f"result of {len(result)} bytes: the hub takes at most {MAX_RESULT}")
        return self.contract.functions.commit(task_id, request_hash, digest, result)

    def commit(self, sender: TxSender, task_id: int, digest: bytes, result: bytes, *,
               request_hash: bytes | None = None, **kw) -> TaskCompleted:
        """Commit a certified result (oracle only); returns the TaskCompleted event.

        REQUEST_HASH: the request's (default: the one on chain now; the oracle passes the one of
        the request it computed for)."""
        if request_hash is None:
            request_hash = self.task(task_id).request_hash
        receipt = sender.transact(self.commit_call(task_id, request_hash, digest, result), **kw)
        event = self._one_event("TaskCompleted", receipt)
        return _completed(event)

    def refund(self, sender: TxSender, task_id: int, **kw):
        return sender.transact(self.contract.functions.refund(task_id), **kw)

    def set_oracle(self, sender: TxSender, oracle: str, **kw):
        return sender.transact(self.contract.functions.setOracle(oracle), **kw)

    def set_pool(self, sender: TxSender, pool: str, **kw):
        return sender.transact(self.contract.functions.setPool(pool), **kw)

    # --- events ------------------------------------------------------------------------

    def requested_events(self, from_block: int, to_block: int | str = "latest", *, app_id: int | None = None) -> list[TaskRequested]:
        """Requests logged in [FROM_BLOCK, TO_BLOCK], in chain order."""
        filters = {"appId": app_id} if app_id is not None else None
        out = []
        for e in self._events("TaskRequested", from_block, to_block, filters):
            a = e["args"]
            out.append(
                TaskRequested(
                    task_id=a["taskId"],
                    app_id=a["appId"],
                    requester=a["requester"],
                    callback=a["callback"],
                    params=bytes(a["params"]),
                    deadline=a["deadline"],
                    price=a["price"],
                    ref=_ref(e),
                    callback_fee=a["callbackFee"],
                    request_hash=bytes(a["requestHash"]),
                )
            )
        return out

    def completed_events(self, from_block: int, to_block: int | str = "latest", *, task_id: int | None = None) -> list[TaskCompleted]:
        filters = {"taskId": task_id} if task_id is not None else None
        return [_completed(e) for e in self._events("TaskCompleted", from_block, to_block, filters)]

    def refunded_events(self, from_block: int, to_block: int | str = "latest", *, task_id: int | None = None) -> list[TaskRefunded]:
        filters = {"taskId": task_id} if task_id is not None else None
        return [
            TaskRefunded(e["args"]["taskId"], e["args"]["requester"], e["args"]["amount"], _ref(e))
            for e in self._events("TaskRefunded", from_block, to_block, filters)
        ]


def _completed(e) -> TaskCompleted:
    a = e["args"]
    return TaskCompleted(a["taskId"], bytes(a["digest"]), bytes(a["result"]), a["callbackOk"], _ref(e))


class Distributor(_Bound):
    """contracts/Distributor.vy: the pool's account, one Merkle root per epoch, claims with proofs."""

    NAME = "Distributor"

    def epoch_count(self, block: int | str = "latest") -> int:
        return self.contract.functions.epochCount().call(block_identifier=block)

    def root(self, epoch: int, block: int | str = "latest") -> bytes:
        return bytes(self.contract.functions.roots(epoch).call(block_identifier=block))

    def total(self, epoch: int) -> int:
        return self.contract.functions.totals(epoch).call()

    def uncommitted(self) -> int:
        return self.contract.functions.uncommitted().call()

    def oracle(self) -> str:
        return self.contract.functions.oracle().call()

    def claimed(self, epoch: int, index: int) -> bool:
        return self.contract.functions.claimed(epoch, index).call()

    def commit_call(self, root: bytes, total: int):
        return self.contract.functions.commitEpoch(root, total)

    def claim(self, sender: TxSender, epoch: int, index: int, amount: int, proof, **kw):
        return sender.transact(self.contract.functions.claim(epoch, index, amount, list(proof)), **kw)


class VanityConsumer(_Bound):
    NAME = "VanityConsumer"

    def pubkey(self) -> str:
        return self.contract.functions.pubkey().call()

    def app_id(self) -> int:
        return self.contract.functions.appId().call()

    def hub_address(self) -> str:
        return self.contract.functions.hub().call()

    def request_vanity(self, sender: TxSender, prefix: str, deadline: int, *, max_price: int | None = None,
                       fee: int | None = None, **kw) -> int:
        """Pay (the consumer must be approved for the app's price) and request; the task id.

        MAX_PRICE defaults to the app's price now; FEE (ether for the delivery's gas) to what buys
        the hub's whole callback stipend at twice the node's gas price."""
        if max_price is None or fee is None:
            hub = Hub(self.w3, self.hub_address())
            if max_price is None:
                max_price = hub.app(self.app_id()).price
            if fee is None:
                fee = callback_fee_for(self.w3, hub.callback_gas())
        call = self.contract.functions.requestVanity(prefix, deadline, max_price)
        receipt = sender.transact(call, value=fee, **kw)
        event = self._one_event("VanityRequested", receipt)
        return event["args"]["taskId"]

    def received(self, task_id: int) -> bool:
        return self.contract.functions.received(task_id).call()

    def result(self, task_id: int) -> bytes | None:
        """What the hub delivered for TASK_ID, or None if nothing yet."""
        if not self.received(task_id):
            return None
        return bytes(self.contract.functions.results(task_id).call())

    def last_task_id(self) -> int:
        return self.contract.functions.lastTaskId().call()

    def payer(self, task_id: int) -> str:
        return self.contract.functions.payer(task_id).call()

    def reclaim(self, sender: TxSender, task_id: int, **kw):
        return sender.transact(self.contract.functions.reclaim(task_id), **kw)
