"""``xwpy chain``: deploy the contracts, request a computation and pay for it, follow a task.

The chain is ``--rpc URL`` (with ``--deployment FILE``), or the running oracle of ``--site DIR``
(its ``run/chain.json``). Transactions are signed with ``--key-file FILE`` (a private key in hex,
readable by its owner only) or, on a local chain, ``--account ROLE``: the public demo accounts.
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from xwpy.client.context import JSON_HELP, Settings, emit, fail, pass_settings
from xwpy.client.exits import Exit

ROLES = ("deployer", "oracle", "app_owner", "pool", "requester", "requester2", "stranger")


CHAIN_EXTRA = "the chain part of xwpy is not installed: pip install 'xwpy[chain]'"


def _errors(fn):
    """The chain's refusals and the user's mistakes become one line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            import requests
            from web3.exceptions import Web3Exception
        except ImportError:
            fail(CHAIN_EXTRA)

        from xwpy.chain.tx import TxError
        from xwpy.client.chainclient import ChainClientError
        from xwpy.config import ConfigError

        try:
            return fn(*args, **kwargs)
        except (ChainClientError, ConfigError, TxError) as e:
            fail(str(e))
        except requests.ConnectionError:
            fail(f"cannot reach the chain {click.get_current_context().find_object(ChainOptions).where()}",
                 Exit.UNREACHABLE)
        except (Web3Exception, requests.RequestException) as e:
            fail(f"the chain answered with an error: {type(e).__name__}: {str(e)[:300]}", Exit.REFUSED)

    return wrapper


class ChainOptions:
    def __init__(self, rpc, deployment, site):
        self.rpc, self.deployment, self.site = rpc, deployment, site

    def where(self) -> str:
        return f"at {self.rpc}" if self.rpc else f"of site {self.site} (is its coordinator running?)"

    def target(self):
        from xwpy.client.chainclient import resolve

        return resolve(self.rpc, self.deployment, self.site)


pass_chain = click.make_pass_decorator(ChainOptions)


def _sender(w3, key_file: Path | None, account: str | None, default: str | None = None):
    from xwpy.chain.accounts import check_demo_chain, demo_account
    from xwpy.chain.tx import TxSender
    from xwpy.client.chainclient import ChainClientError
    from xwpy.oracle.chainsetup import read_key_file

    if key_file is not None and account is not None:
        raise ChainClientError("give --key-file or --account, not both")
    if key_file is not None:
        return TxSender(w3, read_key_file(key_file))
    role = account or default
    if role is None:
        raise ChainClientError("give --key-file FILE, or --account ROLE on a local chain (demo accounts)")
    try:
        check_demo_chain(w3.eth.chain_id)
    except ValueError as e:
        raise ChainClientError(f"--account {role}: {e}; sign with --key-file") from None
    return TxSender(w3, demo_account(role).key)


def _key_options(fn):
    fn = click.option("--account", type=click.Choice(ROLES), help="Sign as this demo account (local chains; its key is public).")(fn)
    fn = click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="Sign with the private key in this file.")(fn)
    return fn


def _when(ts: int, now: int) -> str:
    text = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = ts - now
    return f"{text} ({'in' if delta >= 0 else 'passed'} {abs(delta)} s, chain time)"


def register(cli: click.Group) -> None:
    @cli.group("chain")
    @click.option("--rpc", envvar="XWPY_CHAIN_URL", help="JSON-RPC URL of the chain (default: the --site's oracle).")
    @click.option("--deployment", type=click.Path(dir_okay=False, path_type=Path), envvar="XWPY_DEPLOYMENT",
                  help="Deployment file (token, hub, apps) from `xwpy chain deploy --out`.")
    @pass_settings
    @click.pass_context
    def chain(ctx, s: Settings, rpc, deployment):
        """The oracle's chain: deploy contracts, request computations, follow tasks."""
        ctx.obj = ChainOptions(rpc, deployment, s.site)

    @chain.command("deploy")
    @_key_options
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="Write the deployment (addresses, app ids, start block) here.")
    @click.option("--oracle", "oracle_address", help="The oracle's address (default with --account: the demo oracle).")
    @click.option("--pool", "pool_address", help="Where the pool's share goes (default: the payout distributor it deploys, which the oracle pays volunteers from).")
    @click.option("--app", "apps", multiple=True, metavar="NAME=PRICE",
                  help="Register an app at a price in RLC (default: the oracle's apps at their demo prices).")
    @click.option("--mint", multiple=True, metavar="ADDRESS=AMOUNT",
                  help="Mint RLC to an address (default with --account: 1000 RLC to each demo requester).")
    @click.option("--pool-fee-bps", type=click.IntRange(0, 10_000), default=3_000, show_default=True,
                  help="The site's share of each price, in basis points (the rest goes to the volunteers).")
    @click.option("--callback-gas", type=click.IntRange(1, 10_000_000), default=400_000, show_default=True,
                  help="Gas the hub gives a consumer's result callback.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_chain
    @_errors
    def deploy(c: ChainOptions, key_file, account, out, oracle_address, pool_address, apps, mint, pool_fee_bps,
               callback_gas, as_json):
        """Deploy the RLC token and the task hub, register apps; the deployer (signer) is the hub's admin."""
        from web3 import Web3

        from xwpy.chain.accounts import demo_account
        from xwpy.chain.deploy import DEMO_MINT, deploy_stack
        from xwpy.client.chainclient import ChainClientError, parse_rlc
        from xwpy.oracle.chainsetup import demo_apps
        from xwpy.oracle.handlers import default_handlers

        t = c.target()
        deployer = _sender(t.w3, key_file, account)
        demo = key_file is None

        def address(value, role, what):
            if value is None:
                if not demo:
                    raise ChainClientError(f"give --{what} ADDRESS")
                return demo_account(role).address
            if not Web3.is_address(value):
                raise ChainClientError(f"--{what}: not an address: {value!r}")
            return Web3.to_checksum_address(value)

        def pairs(items, what):
            out_ = {}
            for item in items:
                name, sep, value = item.partition("=")
                if not sep or not name:
                    raise ChainClientError(f"--{what} takes NAME=VALUE, got {item!r}")
                out_[name] = parse_rlc(value)
            return out_

        prices = pairs(apps, "app") or demo_apps(default_handlers())
        minted = pairs(mint, "mint")
        if not minted and demo:  # the demo requesters get something to pay with
            minted = {demo_account(r).address: DEMO_MINT for r in ("requester", "requester2")}
        for a in minted:
            address(a, None, "mint")
        owner = deployer
        d = deploy_stack(
            t.w3, deployer, oracle=address(oracle_address, "oracle", "oracle"), pool=None if pool_address is None else address(pool_address, "pool", "pool"),
            apps={name: (owner, price) for name, price in prices.items()},
            mint={Web3.to_checksum_address(a): v for a, v in minted.items()},
            pool_fee_bps=pool_fee_bps, callback_gas=callback_gas,
        )
        d.save(out)
        emit(d.to_json(), as_json,
             f"hub {d.hub}\ntoken {d.token}\napps {', '.join(f'{n} (id {i})' for n, i in d.apps.items())}\n"
             f"oracle {d.oracle}, pool {d.pool} ({d.pool_fee_bps / 100:g}%)"
             f"{' (the payout distributor)' if d.pool == d.distributor else ''}\ndeployment written to {out}")

    @chain.command("consumer")
    @click.argument("pubkey")
    @_key_options
    @click.option("--app", default="vanitygen", show_default=True, help="The app whose results the consumer asks for.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_chain
    @_errors
    def consumer(c: ChainOptions, pubkey, key_file, account, app, as_json):
        """Deploy a VanityConsumer that orders vanity addresses for PUBKEY (compressed, 66 hex digits)."""
        from xwpy.chain.deploy import deploy_consumer
        from xwpy.client.chainclient import ChainClientError

        t = c.target()
        sender = _sender(t.w3, key_file, account, default=None)
        try:
            contract = deploy_consumer(sender, t.need_deployment(), pubkey, app=app)
        except ValueError as e:
            raise ChainClientError(str(e)) from None
        emit({"consumer": contract.address, "pubkey": pubkey}, as_json, contract.address)

    @chain.command("request")
    @click.argument("app")
    @click.argument("params")
    @click.option("--consumer", "consumer_address", help="Order through this VanityConsumer: PARAMS is the prefix.")
    @_key_options
    @click.option("--ttl", type=click.IntRange(10, 30 * 24 * 3600), default=600, show_default=True,
                  help="Seconds (of chain time) until the deadline.")
    @click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the result (or the deadline).")
    @click.option("--timeout", type=click.FloatRange(0), help="Give up waiting after this many seconds (default: the TTL + 60).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_chain
    @_errors
    def request(c: ChainOptions, app, params, consumer_address, key_file, account, ttl, wait, timeout, as_json):
        """Pay for APP with PARAMS (JSON), then wait and show the result.

        \b
        xwpy chain request hashchain '{"text": "hello", "rounds": 1000}' --account requester
        xwpy chain request vanitygen 1x --consumer 0xCONSUMER --account requester
        """
        from xwpy.chain.contracts import TaskStatus
        from xwpy.client.chainclient import ChainClientError, describe, format_rlc, request_direct, request_vanity, wait_final

        t = c.target()
        sender = _sender(t.w3, key_file, account)
        if consumer_address:
            req = request_vanity(t, sender, consumer_address, params, ttl)
        else:
            try:
                json.loads(params)
            except ValueError as e:
                raise ChainClientError(f"PARAMS must be JSON (for a consumer, give --consumer): {e}") from None
            req = request_direct(t, sender, app, params.encode("utf-8"), ttl)
        if not as_json:
            click.echo(f"task {req.task_id} requested for {format_rlc(req.price)} (tx {req.tx_hash}); deadline in {ttl} s")
        if not wait:
            emit({"task": req.task_id, "price": req.price, "deadline": req.deadline, "tx": req.tx_hash}, as_json)
            return
        status = wait_final(t, req.task_id, ttl + 60 if timeout is None else timeout)
        info = describe(t, req.task_id, consumer_address)
        emit(info, as_json, _status_text(info))
        if status is not TaskStatus.COMPLETED:
            sys.exit(1)

    @chain.command("status")
    @click.argument("task_id", type=click.IntRange(1))
    @click.option("--consumer", "consumer_address", help="Also show what this consumer contract received.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_chain
    @_errors
    def status(c: ChainOptions, task_id, consumer_address, as_json):
        """Show TASK_ID as the hub records it: status, price, deadline, the committed result."""
        from xwpy.client.chainclient import describe

        info = describe(c.target(), task_id, consumer_address)
        if c.site is not None:
            info["oracle"] = _oracle_view(c, info)
        emit(info, as_json, _status_text(info))

    @chain.command("refund")
    @click.argument("task_id", type=click.IntRange(1))
    @click.option("--consumer", "consumer_address", help="The task was ordered through this consumer: reclaim from it.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @_key_options
    @pass_chain
    @_errors
    def refund(c: ChainOptions, task_id, consumer_address, key_file, account, as_json):
        """After the deadline, take back the escrow of a task that got no result."""
        from xwpy.chain.contracts import VanityConsumer
        from xwpy.client.chainclient import format_rlc

        t = c.target()
        sender = _sender(t.w3, key_file, account)
        before = t.token.balance_of(sender.address)
        if consumer_address:
            VanityConsumer(t.w3, consumer_address).reclaim(sender, task_id)
        else:
            t.hub.refund(sender, task_id)
        refunded = t.token.balance_of(sender.address) - before
        emit({"task": task_id, "refunded_wei": refunded, "to": sender.address}, as_json,
             f"refunded {format_rlc(refunded)} to {sender.address}")


def _status_text(info: dict) -> str:
    from xwpy.client.chainclient import format_rlc

    lines = [
        f"task {info['task']}: {info['status']}  ({info['app']}, {format_rlc(info['price'])})",
        f"  requester {info['requester']}",
        f"  deadline  {_when(info['deadline'], info['chain_time'])}",
    ]
    if info.get("digest"):
        lines.append(f"  digest    {info['digest']}")
    if info.get("result") is not None:
        lines.append(f"  result    {info['result']}")
        if int(info["callback"], 16):
            lines.append(f"  callback  {'delivered' if info.get('callback_ok') else 'not delivered'}")
    if "consumer_result" in info:
        lines.append(f"  consumer  {info['consumer_result'] if info['consumer_result'] is not None else '(nothing yet)'}")
    if "refunded" in info:
        lines.append(f"  refunded  {format_rlc(info['refunded'])}")
    oracle = info.get("oracle")
    if oracle:
        lines.append(f"  oracle    {oracle['status']}" + (f": {oracle['error']}" if oracle.get("error") else "")
                     + (f"; grid jobs {', '.join(map(str, oracle['jobs']))}" if oracle.get("jobs") else ""))
    return "\n".join(lines)


def _oracle_view(c: ChainOptions, info: dict) -> dict | None:
    """The site's own record of the task (asked of its coordinator), if it has one."""
    from xwpy.client.api import ClientError, chain_task

    try:
        t = chain_task(c.site, int(info["task"]))
    except ClientError:  # no oracle there, not seen yet, coordinator away: the chain's view stands alone
        return None
    return {"status": t["status"], "error": t["error"], "jobs": t["jobs"], "commit_tx": t["commit_tx"]}
