"""The on-chain part of ``xwpy demo``: a requester pays RLC for a vanity address through a consumer
contract; the coordinator's oracle runs the search on the grid and delivers the certified result
to that contract; everyone is paid exactly the agreed shares.

The chain is the coordinator's embedded one (served on loopback, demo accounts funded).
"""

from __future__ import annotations

import json
import time

import click

from xwpy.localgrid import LocalGrid


def say(text: str) -> None:
    click.secho(text, fg="cyan", bold=True)


def order_on_chain(grid: LocalGrid, prefix: str, step: int = 8, timeout: float = 600.0) -> None:
    from xwpy.apps.vanitygen import combine
    from xwpy.chain.accounts import demo_accounts
    from xwpy.chain.contracts import fee_split
    from xwpy.chain.deploy import Deployment, deploy_consumer
    from xwpy.chain.node import connect
    from xwpy.chain.tx import TxSender
    from xwpy.client.chainclient import ChainTarget, format_rlc, request_vanity

    info = grid.chain_info()
    w3 = connect(info["url"])
    d = Deployment.load(info["deployment"])
    acc = demo_accounts()
    carol = TxSender(w3, acc["requester"].key)
    token, hub = d.token_at(w3), d.hub_at(w3)
    # The pool's share goes to the payout distributor: the volunteers claim it per epoch (xwpy worker claim).
    roles = {"requester": acc["requester"].address, "app owner": acc["app_owner"].address, "pool": d.pool}
    before = {r: token.balance_of(a) for r, a in roles.items()}

    secret, pub = combine.keygen()
    say(f"{step}. on the chain ({info['url']}, hub {d.hub}): carol, who holds {format_rlc(before['requester'])}, "
        f"deploys a VanityConsumer for her public key and orders an address starting with {prefix!r}")
    consumer = deploy_consumer(carol, d, pub.hex())
    t0 = time.monotonic()
    req = request_vanity(ChainTarget(info["url"], w3, d), carol, consumer.address, prefix, ttl=3600)
    click.echo(f"   task {req.task_id}: {format_rlc(req.price)} in escrow at the hub (tx {req.tx_hash[:18]}...)")

    say(f"{step + 1}. the oracle follows the hub, runs the search on the grid (verified units) and commits the result")
    deadline = time.monotonic() + timeout
    while (got := consumer.result(req.task_id)) is None:
        if time.monotonic() > deadline:
            raise click.ClickException(f"no result on chain after {timeout:.0f} s")
        time.sleep(0.2)  # polling the chain for the demo's display
    [event] = hub.completed_events(d.block, task_id=req.task_id)
    click.echo(f"   delivered to the consumer contract {time.monotonic() - t0:.1f} s after the request, "
               f"in block {event.ref.block_number}; digest of the certified grid result: 0x{event.digest.hex()[:16]}...")

    result = json.loads(got)
    key = combine.combine_parts(int(result["partial_key"], 16), result["candidate"], secret)
    say(f"{step + 2}. the consumer holds {len(got)} bytes: {got.decode()}")
    click.echo("   carol combines the partial key with her secret (nobody else can):")
    click.echo(f"   address:           {key.address}")
    click.echo(f"   private key (WIF): {key.wif}")
    after = {r: token.balance_of(a) for r, a in roles.items()}
    to_owner, to_pool = fee_split(req.price, d.pool_fee_bps)
    for role, expected in (("requester", -req.price), ("app owner", to_owner), ("pool", to_pool)):
        delta = after[role] - before[role]
        amount = ("-" if delta < 0 else "+") + format_rlc(abs(delta))
        check = "exactly as agreed" if delta == expected else f"expected {expected}"
        click.echo(f"   {role:10} {amount:>10}   ({check})")
