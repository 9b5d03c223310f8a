"""The chain side of the CLI: find the chain, pay for a request, follow it, describe a task.

Blocking functions over ``xwpy.chain`` (the CLI, the demo and the benchmark share them). Amounts
are in RLC base units (9 decimals); ``parse_rlc``/``format_rlc`` convert for people.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, Callable

from web3 import Web3

from xwpy.chain.contracts import Hub, TaskStatus, Token, VanityConsumer, callback_fee_for
from xwpy.chain.deploy import RLC_DECIMALS, Deployment
from xwpy.chain.node import connect, latest_timestamp
from xwpy.chain.tx import TxSender
from xwpy.client.context import format_rlc  # noqa: F401  (the CLI's one formatter, used from here)

RUN_FILE = Path("run") / "chain.json"


class ChainClientError(Exception):
    """A mistake or a refusal the user can act on; the message says which."""


# -- amounts ----------------------------------------------------------------------------------


def parse_rlc(text: str) -> int:
    """'10', '0.5', '1e-9' RLC -> base units; refuses negative or finer than 1e-9."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ChainClientError(f"not an amount of RLC: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ChainClientError(f"not an amount of RLC: {text!r}")
    with localcontext() as ctx:
        ctx.prec = 100  # exact up to uint256 (78 digits)
        units = value * 10**RLC_DECIMALS
    if units >= 2**256:
        raise ChainClientError(f"{text} RLC is more than a uint256 holds")
    if units != units.to_integral_value():
        raise ChainClientError(f"{text} RLC is finer than the token's {RLC_DECIMALS} decimals")
    return int(units)


# -- where the chain is ---------------------------------------------------------------------


@dataclass
class ChainTarget:
    url: str
    w3: Web3
    deployment: Deployment | None

    def need_deployment(self) -> Deployment:
        if self.deployment is None:
            raise ChainClientError("no deployment: give --deployment FILE (written by `xwpy chain deploy --out`)")
        return self.deployment

    @property
    def hub(self) -> Hub:
        return self.need_deployment().hub_at(self.w3)

    @property
    def token(self) -> Token:
        return self.need_deployment().token_at(self.w3)


def resolve(rpc: str | None, deployment: Path | None, site: Path | None) -> ChainTarget:
    """The chain from --rpc/--deployment, or from a running site's oracle (SITE/run/chain.json)."""
    if rpc is None and site is not None:
        run = Path(site) / RUN_FILE
        try:
            info = json.loads(run.read_text())
            rpc = info["url"]
            deployment = deployment or Path(info["deployment"])
            if info.get("url_in_config"):  # a node URL with a key in it is not in the run file
                from xwpy import config

                rpc = config.load(Path(site)).oracle.chain
        except FileNotFoundError:
            raise ChainClientError(f"no oracle chain running for site {site} (missing {run})") from None
        except (ValueError, KeyError):
            raise ChainClientError(f"{run} is damaged") from None
    if rpc is None:
        raise ChainClientError("no chain given: --rpc URL (or XWPY_CHAIN_URL), or --site DIR of a coordinator running its oracle")
    try:
        w3 = connect(rpc)
    except ValueError as e:
        raise ChainClientError(str(e)) from None
    d = None
    if deployment is not None:
        try:
            d = Deployment.load(deployment)
        except ValueError as e:
            raise ChainClientError(str(e)) from None
    return ChainTarget(rpc, w3, d)


# -- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requested:
    task_id: int
    price: int
    deadline: int
    tx_hash: str


def request_direct(t: ChainTarget, sender: TxSender, app: str, params: bytes, ttl: int) -> Requested:
    """Approve the app's price for the hub and request APP with PARAMS (no callback)."""
    d = t.need_deployment()
    if app not in d.apps:
        raise ChainClientError(f"no app {app!r} in this deployment (it has: {', '.join(sorted(d.apps))})")
    hub, token = t.hub, t.token
    app_id = d.apps[app]
    price = hub.app(app_id).price
    _ensure_funds(token, sender.address, price)
    if price:
        token.approve(sender, hub.address, price)
    deadline = latest_timestamp(t.w3) + ttl
    # The price read above is the most paid: an owner raising it meanwhile makes this revert.
    fn = hub.contract.functions.request(app_id, params, "0x" + "00" * 20, deadline, price)
    # Gas with a quarter to spare over the node's estimate: a commit mined in between may empty the
    # hub's RLC balance, and the request's payment then fills it again at a new word's price
    # (seen on ganache: out of gas by 20k while the oracle committed the previous task).
    estimate = sender.estimate_gas(fn)
    receipt = sender.transact(fn, gas=estimate + estimate // 4)
    (event,) = [e for e in hub.contract.events.TaskRequested().process_receipt(receipt, errors=_discard())]
    return Requested(event["args"]["taskId"], price, deadline, "0x" + bytes(receipt["transactionHash"]).hex())


def request_vanity(t: ChainTarget, sender: TxSender, consumer_address: str, prefix: str, ttl: int,
                   max_price: int | None = None) -> Requested:
    """Pay a VanityConsumer the app's price and have it request a search for PREFIX; MAX_PRICE (the
    price the person was shown) is the most paid: more is refused here, and by the hub if the price
    rises before the request is mined."""
    try:
        consumer = VanityConsumer(t.w3, consumer_address)
    except ValueError as e:
        raise ChainClientError(f"bad consumer address: {e}") from None
    if not t.w3.eth.get_code(consumer.address):
        raise ChainClientError(f"no contract at {consumer.address}")
    hub, token = t.hub, t.token
    price = hub.app(consumer.app_id()).price
    if max_price is not None:
        if price > max_price:
            raise ChainClientError(f"the price is now {format_rlc(price)}, more than the {format_rlc(max_price)} agreed")
    _ensure_funds(token, sender.address, price)
    if price:
        token.approve(sender, consumer.address, price)
    deadline = latest_timestamp(t.w3) + ttl
    # At most the price agreed (or read above); the ether pays the gas of the result's delivery.
    fee = callback_fee_for(t.w3, hub.callback_gas())
    most = price if max_price is None else max_price
    receipt = sender.transact(consumer.contract.functions.requestVanity(prefix, deadline, most), value=fee)
    (event,) = consumer.contract.events.VanityRequested().process_receipt(receipt, errors=_discard())
    return Requested(event["args"]["taskId"], price, deadline, "0x" + bytes(receipt["transactionHash"]).hex())


def _ensure_funds(token: Token, owner: str, price: int) -> None:
    balance = token.balance_of(owner)
    if balance < price:
        raise ChainClientError(f"{owner} holds {format_rlc(balance)}, the app costs {format_rlc(price)}")


def _discard():
    from web3.logs import DISCARD

    return DISCARD


# -- following a task -----------------------------------------------------------------------


def describe(t: ChainTarget, task_id: int, consumer: str | None = None) -> dict[str, Any]:
    """A task as the chain knows it, in plain JSON values."""
    d = t.need_deployment()
    hub = t.hub
    info = hub.task(task_id)
    if info.status is TaskStatus.NONE:
        raise ChainClientError(f"no task {task_id} on the hub {hub.address}")
    app = hub.app(info.app_id)
    now = latest_timestamp(t.w3)
    out: dict[str, Any] = {
        "task": task_id, "status": info.status.name, "app": app.name if app else f"#{info.app_id}",
        "requester": info.requester, "callback": info.callback, "price": info.price,
        "deadline": info.deadline, "chain_time": now, "digest": None, "result": None,
    }
    if info.status is TaskStatus.COMPLETED:
        out["digest"] = "0x" + info.digest.hex()
        events = hub.completed_events(d.block, task_id=task_id)
        if events:
            e = events[-1]
            out.update(result=_text(e.result), callback_ok=e.callback_ok, block=e.ref.block_number,
                       commit_tx="0x" + e.ref.tx_hash.hex())
    elif info.status is TaskStatus.REFUNDED:
        events = hub.refunded_events(d.block, task_id=task_id)
        if events:
            out.update(refunded=events[-1].amount, block=events[-1].ref.block_number)
    if consumer:
        c = VanityConsumer(t.w3, consumer)
        got = c.result(task_id)
        out["consumer_result"] = None if got is None else _text(got)
    return out


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + data.hex()


def wait_final(t: ChainTarget, task_id: int, timeout: float | None, *, interval: float = 0.2,
               on_poll: Callable[[], None] | None = None) -> TaskStatus:
    """Poll until the task is COMPLETED or REFUNDED, or open past its deadline (returned as is),
    or TIMEOUT seconds passed (ChainClientError)."""
    hub = t.hub
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        info = hub.task(task_id)
        if info.status in (TaskStatus.COMPLETED, TaskStatus.REFUNDED):
            return info.status
        if info.status is TaskStatus.REQUESTED and latest_timestamp(t.w3) > info.deadline:
            return info.status
        if end is not None and time.monotonic() > end:
            raise ChainClientError(f"task {task_id} still {info.status.name} after {timeout:g} s")
        if on_poll is not None:
            on_poll()
        time.sleep(interval)  # polling a node: there is no push to wait on
