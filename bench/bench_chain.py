"""On-chain costs of the xwpy contracts: gas per operation, and time per transaction.

    python -m bench.bench_chain [--chains embedded,ganache] [--repeat N] [--oracle MOD:FUNC]

For each chain (the embedded one always; ganache when .ci/install-ganache put it in .tools/)
it deploys the stack, then runs every operation REPEAT times and prints gas used (from the
receipts: the chain's own figure, identical run to run) and the median wall time from
sending to receipt. The reference in the same run is a plain ETH transfer (21,000 gas), so
the "x transfer" columns compare chains and machines fairly.

The headline figure of issue 4, request -> certified result in the consumer contract for a
2-character prefix, needs the oracle and the grid: pass ``--oracle MOD:FUNC``, a function
``start(url: str, deployment: Deployment) -> stop()`` that starts an oracle (and its grid)
against the chain; the benchmark then times requestVanity("1a") until the consumer holds
the result. Without it that row says what is missing.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from typing import Callable

from eth_keys import keys

from xwpy.chain.accounts import demo_accounts
from xwpy.chain.artifacts import load_artifact
from xwpy.chain.contracts import callback_fee_for
from xwpy.chain.deploy import Deployment, deploy_consumer, deploy_contract, deploy_demo
from xwpy.chain.node import latest_timestamp
from xwpy.chain.nodeproc import NodeProcess, ganache_dir, start_embedded, start_ganache
from xwpy.chain.tx import TxSender

PUBKEY = keys.PrivateKey(b"\x05" * 32).public_key.to_compressed_bytes().hex()
VANITY_RESULT = b'{"address":"1aXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","partial_key":"' + b"ab" * 32 + b'"}'


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def measure(node: NodeProcess, repeat: int, oracle: Callable | None) -> tuple[list[tuple[str, int, int, float]], str, int]:
    w3 = node.web3()
    acc = demo_accounts()
    tx = {role: TxSender(w3, a.key) for role, a in acc.items()}
    rows: list[tuple[str, int, int, float]] = []
    net: list[int] = []  # per callback commit: what it cost the oracle, less the fee it was paid (wei)

    def record(name: str, runs: list[tuple[int, float]]) -> None:
        # The first run can cost more: it turns storage slots from zero to non-zero (a
        # counter, the hub's balance, an allowance), 22,100 gas instead of 5,000 each.
        rows.append((name, runs[0][0], runs[-1][0], statistics.median(s for _, s in runs)))

    def receipt_run(fn) -> tuple[int, float]:
        receipt, secs = timed(fn)
        return receipt["gasUsed"], secs

    record("ETH transfer (reference)", [
        receipt_run(lambda: tx["requester"].transact(_Transfer(acc["stranger"].address, 1))) for _ in range(repeat)
    ])
    record("deploy RLC", [receipt_run(lambda: deploy_contract(tx["deployer"], "RLC", "bench", "RLC")[1]) for _ in range(repeat)])
    d = deploy_demo(w3, accounts=acc)
    hub, token = d.hub_at(w3), d.token_at(w3)
    record("deploy TaskHub", [
        receipt_run(lambda: deploy_contract(tx["deployer"], "TaskHub", d.token, d.oracle, d.pool, d.pool_fee_bps, d.callback_gas)[1])
        for _ in range(repeat)
    ])
    record("registerApp", [receipt_run(lambda: _receipt_of(hub, "registerApp", tx["app_owner"], "bench-app", 10**10)) for _ in range(repeat)])
    record("approve", [receipt_run(lambda: token.approve(tx["requester"], hub.address, 10**10)) for _ in range(repeat)])

    app_id = d.apps["vanitygen"]
    params = b'{"prefix":"1a","pubkey":"' + PUBKEY.encode() + b'"}'
    requests, task_ids = [], []
    for _ in range(repeat):
        token.approve(tx["requester"], hub.address, hub.app(app_id).price)
        deadline = latest_timestamp(w3) + 3600
        fn = hub.contract.functions.request(app_id, params, "0x" + "00" * 20, deadline, hub.app(app_id).price)
        receipt, secs = timed(lambda: tx["requester"].transact(fn))
        requests.append((receipt["gasUsed"], secs))
        (ev,) = hub.contract.events.TaskRequested().process_receipt(receipt, errors=_discard())
        task_ids.append(ev["args"]["taskId"])
    record("request (direct, 2-char params)", requests)
    record("commit (no callback)", [
        receipt_run(lambda t=t: _commit_receipt(hub, tx["oracle"], t)) for t in task_ids
    ])

    consumer = deploy_consumer(tx["deployer"], d, PUBKEY)
    fee = callback_fee_for(w3, d.callback_gas)
    vanity, vtasks = [], []
    for _ in range(repeat):
        price = hub.app(app_id).price
        token.approve(tx["requester"], consumer.address, price)
        fn = consumer.contract.functions.requestVanity("1a", latest_timestamp(w3) + 3600, price)
        receipt, secs = timed(lambda: tx["requester"].transact(fn, value=fee))
        vanity.append((receipt["gasUsed"], secs))
        (ev,) = consumer.contract.events.VanityRequested().process_receipt(receipt, errors=_discard())
        vtasks.append(ev["args"]["taskId"])
    record("requestVanity via consumer", vanity)
    record(f"commit + consumer callback ({len(VANITY_RESULT)} B)", [
        receipt_run(lambda t=t: _commit_receipt(hub, tx["oracle"], t, VANITY_RESULT, net)) for t in vtasks
    ])
    assert all(consumer.result(t) == VANITY_RESULT for t in vtasks)

    # The same, with the gas limit estimated once beforehand instead of per transaction:
    # what an oracle can do when the node's eth_estimateGas is slow (ganache's is).
    vtasks = []
    for _ in range(repeat):
        token.approve(tx["requester"], consumer.address, hub.app(app_id).price)
        vtasks.append(consumer.request_vanity(tx["requester"], "1a", latest_timestamp(w3) + 3600))
    probe = _commit_call(hub, vtasks[0], VANITY_RESULT)
    gas_limit = w3.eth.estimate_gas({"from": tx["oracle"].address, "to": hub.address, "data": probe._encode_transaction_data()})
    record("commit + callback, gas limit given", [
        receipt_run(lambda t=t: tx["oracle"].transact(_commit_call(hub, t, VANITY_RESULT), gas=gas_limit))
        for t in vtasks
    ])
    assert all(consumer.result(t) == VANITY_RESULT for t in vtasks)

    # A requester whose callback burns all the gas it gets: what does the oracle pay for it?
    hostile = deploy_contract(tx["deployer"], "HostileCallback", hub.address, token.address)[0]
    hostile = w3.eth.contract(address=hostile, abi=load_artifact("HostileCallback").abi)
    tx["requester"].transact(hostile.functions.setMode(2, 0, 0))  # MODE_BURN
    price = hub.app(app_id).price
    token.transfer(tx["requester"], hostile.address, price * repeat)
    tx["requester"].transact(hostile.functions.approveHub(price * repeat))
    burn_tasks = []
    for _ in range(repeat):
        receipt = tx["requester"].transact(hostile.functions.requestTask(app_id, latest_timestamp(w3) + 3600), value=fee)
        (ev,) = hub.contract.events.TaskRequested().process_receipt(receipt, errors=_discard())
        burn_tasks.append(ev["args"]["taskId"])
    record("commit + callback burning its stipend", [
        receipt_run(lambda t=t: _commit_receipt(hub, tx["oracle"], t, b"r", net)) for t in burn_tasks
    ])

    if oracle is None:
        latency = "n/a: needs the oracle (pass --oracle MOD:FUNC)"
    else:
        latency = _round_trip(node, d, consumer, tx, oracle)
    return rows, latency, max(net)


class _Transfer:
    """A plain value transfer shaped like a contract call for TxSender.transact."""

    def __init__(self, to: str, value: int):
        self.to, self.value = to, value

    def build_transaction(self, params: dict) -> dict:
        from web3 import Web3

        return {**params, "to": Web3.to_checksum_address(self.to), "value": self.value, "gas": 21000,
                "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}


def _discard():
    from web3.logs import DISCARD

    return DISCARD


def _receipt_of(hub, fn_name, sender, *args):
    return sender.transact(getattr(hub.contract.functions, fn_name)(*args))


def _commit_call(hub, task_id, result):
    return hub.commit_call(task_id, hub.task(task_id).request_hash, b"\x01" * 32, result)


def _commit_receipt(hub, oracle, task_id, result=b"result", net: list | None = None):
    w3 = hub.w3
    before = w3.eth.get_balance(oracle.address)
    receipt = oracle.transact(_commit_call(hub, task_id, result))
    if net is not None:  # gas paid minus the callback fee received: > 0 is the oracle's loss
        net.append(before - w3.eth.get_balance(oracle.address))
    return receipt


def _round_trip(node, d: Deployment, consumer, tx, start_oracle) -> str:
    stop = start_oracle(node.url, d)
    try:
        w3 = node.web3()
        d.token_at(w3).approve(tx["requester2"], consumer.address, d.hub_at(w3).app(d.apps["vanitygen"]).price)
        t0 = time.perf_counter()
        task_id = consumer.request_vanity(tx["requester2"], "1a", latest_timestamp(w3) + 3600)
        timeout = t0 + 600
        while consumer.result(task_id) is None:  # polling the chain is the measurement
            if time.perf_counter() > timeout:
                return "timed out after 600 s"
            time.sleep(0.05)
        return f"{time.perf_counter() - t0:.2f} s"
    finally:
        stop()


def load_oracle(spec: str | None):
    if not spec:
        return None
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", default="embedded,ganache")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--oracle", help="MOD:FUNC starting an oracle, for the request->result latency")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    oracle = load_oracle(args.oracle)

    results = {}
    for name in [c.strip() for c in args.chains.split(",") if c.strip()]:
        if name == "embedded":
            starter = start_embedded
        elif name == "ganache":
            if ganache_dir() is None:
                print("ganache: not installed (.ci/install-ganache), skipped", file=sys.stderr)
                continue
            starter = start_ganache
        else:
            parser.error(f"unknown chain {name!r} (embedded, ganache)")
        with starter() as node:
            results[name] = measure(node, args.repeat, oracle)

    for name, (rows, latency, net) in results.items():
        ref_gas, ref_secs = rows[0][2], rows[0][3]
        print(f"\n== {name}: gas from receipts, time = median send-to-receipt of {args.repeat} runs ==")
        print(f"{'operation':46} {'gas 1st':>9} {'gas then':>9} {'x xfer':>7} {'ms':>8} {'x xfer':>7}")
        for op, first, steady, secs in rows:
            print(f"{op:46} {first:9d} {steady:9d} {steady / ref_gas:7.2f} {secs * 1000:8.1f} {secs / ref_secs:7.2f}")
        print(f"{'request -> result in consumer (prefix 1a)':46} {latency}")
        print(f"the oracle's worst net cost of a callback commit: {net} wei (ether spent on gas less the callback "
              "fee received; above 0 is a loss)")
    if len(results) == 2:
        (a, (ra, _, _)), (b, (rb, _, _)) = results.items()
        print(f"\ntime per transaction, {b} / {a}:")
        for (op, _, _, sa), (_, _, _, sb) in zip(ra, rb):
            print(f"  {op:46} {sb / sa:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
