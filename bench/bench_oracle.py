"""The oracle's headline figure: request transaction -> certified result in the consumer contract.

    python -m bench.bench_oracle [--chains embedded,ganache] [--repeat N] [--workers W] [--prefix 1a]

For each chain it starts a whole local grid (coordinator with its oracle, W worker processes):
on the embedded chain the coordinator serves the chain itself; on ganache the oracle follows an
external node. A requester then orders, REPEAT times, a split-key vanity address with a
2-character prefix through a VanityConsumer, and the time from sending ``requestVanity`` to the
result being readable in the consumer is measured (the chain is polled every 10 ms). The same
for the simple handler (hashchain, one quorum-certified job, requested on the hub directly).

References measured in the same run, on the same grid: the same job (a vanity unit of that
prefix, a hashchain job) submitted straight to the coordinator, submit -> certified, and a plain
ETH transfer. "The rest" is the oracle's own share: the latency minus the request transaction
and the grid job (following the event, submitting, committing). Gas comes from the receipts:
per request (requestVanity, hub.request) and per commit (with the consumer's callback or none).

``start_oracle(url, deployment)`` is also the ``--oracle`` hook of ``bench.bench_chain``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from web3.logs import DISCARD

from xwpy.apps.vanitygen import combine
from xwpy.apps.vanitygen.search import SearchSpec, plan_search
from xwpy.chain.accounts import demo_accounts
from xwpy.chain.contracts import callback_fee_for
from xwpy.chain.deploy import Deployment, deploy_consumer
from xwpy.chain.node import connect, latest_timestamp
from xwpy.chain.nodeproc import ganache_dir, start_ganache
from xwpy.chain.tx import TxSender
from xwpy.localgrid import LocalGrid, wait_for
from xwpy.oracle.chainsetup import ensure_demo_deployment, write_key_file
from xwpy.oracle.handlers import default_handlers
from xwpy.oracle.handlers import vanity

POLL = 0.01


def start_grid(root: Path, workers: int, chain_url: str | None = None, deployment: Path | None = None) -> LocalGrid:
    grid = LocalGrid(root, heartbeat=1.0)
    if chain_url is None:
        grid.enable_oracle(rpc_port=0, poll_seconds=0.1)
    else:
        write_key_file(grid.cfg.dir / "oracle.key", demo_accounts()["oracle"].key)
        grid.enable_oracle(chain=chain_url, deployment=str(deployment), key_file="oracle.key", poll_seconds=0.1,
                           confirmations=0)  # ganache never reorganises
    grid.start_coordinator()
    grid.chain_info()
    admin = grid.client()
    for i in range(workers):
        grid.start_worker(f"w{i}", grid.user(f"volunteer{i}", "worker"))
    wait_for(lambda: len(admin.hosts()) == workers, 60, "the workers")
    return grid


def start_oracle(url: str, deployment: Deployment, workers: int = 2):
    """bench_chain's --oracle hook: a local grid whose oracle follows URL; returns stop()."""
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-oracle-"))
    path = root / "deployment.json"
    deployment.save(path)
    grid = start_grid(root, workers, url, path)
    return grid.close


def until(predicate, timeout: float = 300.0):
    end = time.perf_counter() + timeout
    while not (value := predicate()):
        if time.perf_counter() > end:
            raise TimeoutError("no result within the time limit")
        time.sleep(POLL)  # polling the chain is the measurement
    return value


def measure(grid: LocalGrid, repeat: int, prefix: str) -> dict:
    info = grid.chain_info()
    w3 = connect(info["url"])
    d = Deployment.load(info["deployment"])
    acc = demo_accounts()
    requester = TxSender(w3, acc["requester"].key)
    hub, token = d.hub_at(w3), d.token_at(w3)
    secret, pub = combine.keygen()
    out: dict = {k: [] for k in ("vanity", "vanity_tx", "vanity_grid", "hashchain", "hashchain_tx", "hashchain_grid",
                                 "transfer")}
    out["gas"] = {}

    # References on the same grid: the same jobs submitted straight to the coordinator.
    scientist = grid.client(grid.user("bench-scientist"))
    plan = plan_search(SearchSpec(prefix, pubkey=pub), keys_per_second=vanity.RATE,
                       min_unit_seconds=vanity.MIN_UNIT_SECONDS, max_unit_seconds=vanity.MAX_UNIT_SECONDS)
    for i in range(repeat):
        for key, job in (("vanity_grid", {"app": "oracle-vanitygen", "args": plan.unit_args(i)}),
                         ("hashchain_grid", {"app": "oracle-hashchain", "args": ["1000", f"{i:02x}"]})):
            t0 = time.perf_counter()
            [jid] = scientist.submit([job])
            until(lambda: scientist.job(jid)["status"] in ("COMPLETED", "ERROR", "CANCELLED"))
            out[key].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        requester.transact(_Transfer(acc["stranger"].address, 1))
        out["transfer"].append(time.perf_counter() - t0)

    consumer = deploy_consumer(TxSender(w3, acc["deployer"].key), d, pub.hex())
    for _ in range(repeat):
        price = hub.app(d.apps["vanitygen"]).price
        token.approve(requester, consumer.address, price)
        fn = consumer.contract.functions.requestVanity(prefix, latest_timestamp(w3) + 3600, price)
        t0 = time.perf_counter()
        receipt = requester.transact(fn, value=callback_fee_for(w3, d.callback_gas))
        out["vanity_tx"].append(time.perf_counter() - t0)
        (event,) = consumer.contract.events.VanityRequested().process_receipt(receipt, errors=DISCARD)
        task_id = event["args"]["taskId"]
        got = until(lambda: consumer.result(task_id))
        out["vanity"].append(time.perf_counter() - t0)
        out["gas"]["requestVanity (via consumer)"] = receipt["gasUsed"]
        out["gas"]["commit + consumer callback"] = _commit_gas(w3, hub, d, task_id)
        out["result_bytes"] = len(got)
        combine.combine_parts(int(json.loads(got)["partial_key"], 16), json.loads(got)["candidate"], secret)

    for i in range(repeat):
        params = b'{"text":"bench %d","rounds":1000}' % i
        token.approve(requester, hub.address, hub.app(d.apps["hashchain"]).price)
        price = hub.app(d.apps["hashchain"]).price
        fn = hub.contract.functions.request(d.apps["hashchain"], params, "0x" + "00" * 20, latest_timestamp(w3) + 3600,
                                            price)
        t0 = time.perf_counter()
        receipt = requester.transact(fn)
        out["hashchain_tx"].append(time.perf_counter() - t0)
        (event,) = hub.contract.events.TaskRequested().process_receipt(receipt, errors=DISCARD)
        task_id = event["args"]["taskId"]
        until(lambda: hub.task(task_id).status.name == "COMPLETED")
        out["hashchain"].append(time.perf_counter() - t0)
        out["gas"]["hub.request (direct, hashchain)"] = receipt["gasUsed"]
        out["gas"]["commit (no callback)"] = _commit_gas(w3, hub, d, task_id)
    return out


def _commit_gas(w3, hub, d, task_id: int) -> int:
    (event,) = hub.completed_events(d.block, task_id=task_id)
    return w3.eth.get_transaction_receipt(event.ref.tx_hash)["gasUsed"]


class _Transfer:
    def __init__(self, to: str, value: int):
        self.to, self.value = to, value

    def build_transaction(self, params: dict) -> dict:
        from web3 import Web3

        return {**params, "to": Web3.to_checksum_address(self.to), "value": self.value, "gas": 21000,
                "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}


def run_chain(name: str, repeat: int, workers: int, prefix: str) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"xwpy-bench-oracle-{name}-"))
    node = None
    try:
        if name == "embedded":
            grid = start_grid(root, workers)
        else:
            node = start_ganache()
            path = root / "deployment.json"
            ensure_demo_deployment(node.web3(), path, default_handlers())
            grid = start_grid(root, workers, node.url, path)
        try:
            return measure(grid, repeat, prefix)
        finally:
            grid.close()
    finally:
        if node is not None:
            node.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", default="embedded,ganache")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prefix", default="1a", help="vanity prefix (2 characters: the issue's figure)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.workers < 2:
        parser.error("--repeat must be >= 1 and --workers >= 2 (replicas go to distinct hosts)")
    results = {}
    for name in [c.strip() for c in args.chains.split(",") if c.strip()]:
        if name == "ganache" and ganache_dir() is None:
            print("ganache: not installed (.ci/install-ganache), skipped", file=sys.stderr)
            continue
        if name not in ("embedded", "ganache"):
            parser.error(f"unknown chain {name!r} (embedded, ganache)")
        results[name] = run_chain(name, args.repeat, args.workers, args.prefix)

    def stats(xs):
        return f"{statistics.median(xs) * 1000:8.0f} {min(xs) * 1000:8.0f} {max(xs) * 1000:8.0f}"

    for name, r in results.items():
        print(f"\n== {name}: {args.repeat} runs, {args.workers} workers; ms (median, min, max) ==")
        print(f"{'':60} {'median':>8} {'min':>8} {'max':>8}")
        for app, label in (("vanity", f"vanity {args.prefix!r} via the consumer"), ("hashchain", "hashchain on the hub")):
            rows = [
                (f"{label}: request tx -> result on chain", r[app]),
                ("  of which the request tx (send -> receipt)", r[f"{app}_tx"]),
                ("  ref: the same grid job, submit -> certified", r[f"{app}_grid"]),
            ]
            for text, xs in rows:
                print(f"{text:60} {stats(xs)}")
            own = statistics.median(r[app]) - statistics.median(r[f"{app}_tx"]) - statistics.median(r[f"{app}_grid"])
            ratio = statistics.median(r[app]) / statistics.median(r[f"{app}_grid"])
            print(f"{'  the rest (follow, submit, commit)':60} {own * 1000:8.0f}   ({ratio:.2f} x the grid job)")
        print(f"{'ref: ETH transfer send -> receipt':60} {stats(r['transfer'])}")
        print(f"gas (vanity result on chain: {r['result_bytes']} bytes):")
        for op, gas in r["gas"].items():
            print(f"  {op:58} {gas:9d}")
    if len(results) == 2:
        (a, ra), (b, rb) = results.items()
        for app in ("vanity", "hashchain"):
            print(f"\n{app}: request -> result on chain, {b} / {a}: "
                  f"{statistics.median(rb[app]) / statistics.median(ra[app]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
