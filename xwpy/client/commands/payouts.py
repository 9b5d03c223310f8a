"""A volunteer's pay: ``xwpy worker payout-address`` (where this host's share of the pool goes)
and ``xwpy worker claim`` (its proofs from the coordinator, its RLC from the distributor).

Both speak as the host, with the token the worker saved in its state directory (``host.json``),
so they need only what the worker had: ``--state`` and ``--ca``. The claim signs with a key read
from a file (never the command line, never printed).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from xwpy.client.context import JSON_HELP, emit, fail, usage


def _host(ctx: click.Context):
    """(a client of the coordinator with the host's token, the host's id) from the worker's state:
    ``xwpy worker --state DIR --ca FILE payout-address ...`` (--ca may also follow the command)."""
    from xwpy.client.api import Client, Endpoint
    from xwpy.client.context import Settings

    p, settings = ctx.parent.params, ctx.find_object(Settings)
    state_dir = p.get("state_dir")
    ca = p.get("ca") or (settings.ca if settings is not None else None)
    url = p.get("url")

    if state_dir is None:
        usage("give --state DIR: the worker's directory (its host.json names the coordinator and the host)")
    if ca is None:
        usage("give --ca FILE: the site's CA certificate (as for the worker)")
    path = state_dir / "host.json"
    try:
        saved = json.loads(path.read_text())
        host_id, token, saved_url = int(saved["host_id"]), str(saved["token"]), str(saved["url"])
    except FileNotFoundError:
        fail(f"no host in {state_dir} (missing {path}): run the worker once so it registers")
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"cannot read {path}: {e}")
    return Client(Endpoint(url or saved_url, token, ca)), host_id


def register(worker: click.Group) -> None:
    @worker.command("payout-address")
    @click.argument("address", required=False)
    @click.option("--clear", is_flag=True, help="Remove the payout address (this host is then paid nothing).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @click.pass_context
    def payout_address(ctx, address, clear, as_json):
        """Have this host's share of the pool paid to ADDRESS (0x and 40 hex digits; a
        mixed-case address must pass its EIP-55 checksum) from the next payout epoch on."""
        from xwpy.addresses import checked

        if clear == (address is not None):
            usage("give an ADDRESS, or --clear")
        if address is not None:
            try:
                address = checked(address)
            except ValueError as e:
                fail(str(e))
        client, host_id = _host(ctx)
        reply = client.call("PUT", f"/hosts/{host_id}/payout-address", {"address": address})
        emit(reply, as_json, f"host {reply['id']}: paid to {reply['payout_address']} from the next payout epoch on"
             if reply["payout_address"] else f"host {reply['id']}: no payout address (paid nothing)")

    @worker.command("claim")
    @click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="The payout address's private key (64 hex digits, a file only you may read).")
    @click.option("--rpc", envvar="XWPY_CHAIN_URL", required=True,
                  help="JSON-RPC URL of the chain the site's oracle uses (or XWPY_CHAIN_URL).")
    @click.option("--epoch", type=click.IntRange(1), help="Claim this epoch only (default: every one not claimed yet).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @click.pass_context
    def claim(ctx, key_file, rpc, epoch, as_json):
        """Claim this host's payouts: the proofs of the payout address whose key is in --key-file,
        from the coordinator, each sent to the distributor in a claim transaction."""
        try:
            import requests
            from web3.exceptions import Web3Exception
        except ImportError:
            fail("the chain part of xwpy is not installed: pip install 'xwpy[chain]'")
        from xwpy.chain.tx import TxError
        from xwpy.config import ConfigError

        client, _ = _host(ctx)
        try:
            out = _claim(client, key_file, rpc, epoch)
        except ConfigError as e:
            fail(str(e))
        except TxError as e:
            fail(f"the claim failed: {e}")
        except requests.ConnectionError:
            fail(f"cannot reach the chain at {rpc}")
        except (Web3Exception, requests.RequestException) as e:
            fail(f"the chain answered with an error: {type(e).__name__}: {str(e)[:300]}")
        from xwpy.client.chainclient import format_rlc

        lines = [f"epoch {c['epoch']}: {format_rlc(int(c['amount']))} "
                 + (f"claimed (tx {c['tx']})" if c["tx"] else "already claimed") for c in out["claims"]]
        lines.append(f"{format_rlc(out['paid'])} paid to {out['account']}" if out["paid"]
                     else f"nothing to claim for {out['account']}")
        emit(out, as_json, "\n".join(lines))


CLAIM_GAS = 100_000  # a claim costs 66-88k gas (README, "Volunteers paid in RLC"), with a margin


def gas_shortfall(account: str, balance: int, gas_price: int) -> str | None:
    """Why ``account`` cannot send a claim: its ether (wei) does not cover the gas, which the
    claimant pays; None when it can."""
    need = CLAIM_GAS * gas_price
    if balance >= need:
        return None
    return (f"{account} holds {balance / 1e18:.6g} ether, and a claim's gas costs about {need / 1e18:.6g} "
            f"(the claimant pays it): send some ether to {account} first")


def _claim(client, key_file: Path, rpc: str, epoch: int | None) -> dict:
    from eth_account import Account

    from xwpy.chain.contracts import Distributor
    from xwpy.chain.node import connect
    from xwpy.chain.tx import TxSender
    from xwpy.oracle.chainsetup import read_key_file

    key = read_key_file(key_file)
    account = Account.from_key(key).address
    path = f"/payouts/{account}" + (f"/{epoch}" if epoch is not None else "")
    found = client.call("GET", path)
    w3 = connect(rpc)
    if w3.eth.chain_id != found["chain_id"]:
        fail(f"--rpc {rpc} serves chain {w3.eth.chain_id}; the site's oracle pays on chain {found['chain_id']}")
    dist = Distributor(w3, found["distributor"])
    sender = TxSender(w3, key)
    done, paid = [], 0
    for c in found["claims"]:
        amount = int(c["amount"])
        if dist.claimed(c["epoch"], c["index"]):
            done.append({"epoch": c["epoch"], "amount": str(amount), "tx": None})
            continue
        short = gas_shortfall(account, w3.eth.get_balance(account), w3.eth.gas_price)
        if short:  # said before sending, not as the node's "cannot afford txn gas" with the sender in bytes
            fail(short)
        proof = [bytes.fromhex(s[2:]) for s in c["proof"]]
        receipt = dist.claim(sender, c["epoch"], c["index"], amount, proof)
        paid += amount
        done.append({"epoch": c["epoch"], "amount": str(amount), "tx": "0x" + bytes(receipt["transactionHash"]).hex()})
    return {"account": account, "distributor": found["distributor"], "claims": done, "paid": paid}
