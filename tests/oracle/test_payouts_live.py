"""Volunteers paid for what they certified, end to end in real processes (issue 18): workers run
paid chain tasks, the coordinator's oracle commits each epoch's Merkle root to the distributor,
and each volunteer claims with ``xwpy worker claim``: its RLC balance rises by exactly what its
hosts' VALID credit earned of each task's pool share; a second claim is refused; a volunteer
whose host did no VALID work has nothing to claim; the distributor keeps exactly what it did
not pay. A host that certified work with no payout address is owed its part (`xwpy hosts` says
so), and once it gives one, claims exactly what it was owed plus its new parts, once. On the
embedded chain and on ganache. (Two working hosts, each job replicated on two: both certify every
job, so what each earns does not depend on who was faster.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.oracle.oraclegrid import OracleGrid
from tests.oracle.test_end_to_end import hashchain_request

from xwpy.chain import payouts
from xwpy.chain.contracts import Distributor, fee_split
from xwpy.chain.tx import TxReverted
from xwpy.client.context import format_rlc
from xwpy.localgrid import child_env
from xwpy.oracle.chainsetup import write_key_file
from tests.harness import wait_for

pytestmark = pytest.mark.slow

# Who is paid where: two working volunteers' hosts (demo accounts: their keys sign the claims),
# and an idle host with an address and no work.
PAID = {"w0": "requester2", "w1": "stranger"}
IDLE = "app_owner"
FORCE_GAS = 1_500_000  # a claim sent although it reverts: the distributor itself refuses it


@pytest.fixture(params=["embedded", "ganache"])
def oracle_grid(request, grid):
    node = request.getfixturevalue("ganache_node") if request.param == "ganache" else None
    return OracleGrid(grid, request.param, node)


def xwpy(og: OracleGrid, *args: str, code: int = 0) -> str:
    out = subprocess.run([sys.executable, "-m", "xwpy", *args], capture_output=True, text=True, timeout=120,
                         env=child_env(), cwd=og.grid.root)
    assert out.returncode == code, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    return out.stdout if code == 0 else out.stderr


def as_host(og: OracleGrid, state, *args: str, code: int = 0) -> str:
    return xwpy(og, "worker", "--state", str(state), "--ca", str(og.grid.cfg.ca_cert), *args, code=code)


def test_volunteers_claim_exactly_what_their_valid_work_earned(oracle_grid, tmp_path):
    og = oracle_grid.start(workers=2, epoch_seconds=1.0)
    g = og.grid
    states = {f"w{i}": g.work_root / f"w{i}" for i in range(2)}
    hosts = {name: json.loads((state / "host.json").read_text())["host_id"] for name, state in states.items()}
    # An idle volunteer's host: registered, never asks for work.
    idle = g.client(g.user("idler", "worker")).call("POST", "/work/register", {"name": "idle", "cpus": 1, "memory": 1 << 30})
    idle_state = tmp_path / "idle"
    idle_state.mkdir()
    (idle_state / "host.json").write_text(json.dumps({"url": g.url, "host_id": idle["host_id"], "token": idle["token"]}))

    # A typo in an address is one line, and nothing changes.
    err = as_host(og, states["w0"], "payout-address", "0x1234", code=1)
    assert err.startswith("xwpy: error: not an address") and len(err.strip().splitlines()) == 1
    for name, role in PAID.items():
        out = as_host(og, states[name], "payout-address", og.address(role).lower())
        assert f"paid to {og.address(role)}" in out
    as_host(og, idle_state, "payout-address", og.address(IDLE))
    shown = {h["id"]: h["payout_address"] for h in og.admin.hosts()}
    assert shown[hosts["w0"]] == og.address("requester2") and shown[idle["host_id"]] == og.address(IDLE)

    dist = Distributor(og.w3, og.deployment.distributor)
    assert og.hub.pool() == dist.address  # the hub pays the pool's share to the distributor
    reqs = [hashchain_request(og, f"pay me {n}", 5_000) for n in range(3)]
    for r in reqs:
        og.wait_committed(r.task_id)

    # What each address earned, from the ledger as the API shows it: each task's pool share split
    # over its jobs' VALID replicas' credit, host by host; hosts without an address get nothing.
    address_of = {hosts[n]: og.address(r) for n, r in PAID.items()}
    expected: dict[str, int] = {}
    pool_total = 0
    for r in reqs:
        share = fee_split(r.price, og.deployment.pool_fee_bps)[1]
        pool_total += share
        credits: dict[str, int] = {}
        for job_id, _ in og.task_row(r.task_id).jobs:
            for rep in og.admin.job(job_id)["replicas"]:
                if rep["validation"] == "VALID" and rep.get("credit"):
                    key = f"{rep['host_id']:020d}"
                    credits[key] = credits.get(key, 0) + round(rep["credit"] * 1000)
        for key, amount in payouts.split(share, credits).items():
            if int(key) in address_of:
                expected[address_of[int(key)]] = expected.get(address_of[int(key)], 0) + amount
    assert set(expected) == {og.address(r) for r in PAID.values()}, expected  # both did VALID work

    def committed_for(address: str, state) -> int:
        client_claims = og.grid.client(json.loads((state / "host.json").read_text())["token"])
        return sum(int(c["amount"]) for c in client_claims.call("GET", f"/payouts/{address}")["claims"])

    for name, role in PAID.items():
        wait_for(lambda: committed_for(og.address(role), states[name]) == expected[og.address(role)], 90,
                 f"the epochs paying {role} to be committed")
    assert dist.epoch_count() >= 1

    before = og.balances(*PAID.values(), IDLE)
    for name, role in PAID.items():
        key = tmp_path / f"{role}.key"
        write_key_file(key, og.accounts[role].key)
        out = json.loads(as_host(og, states[name], "claim", "--key-file", str(key), "--rpc", og.url, "--json"))
        assert out["paid"] == expected[og.address(role)] and out["account"] == og.address(role)
        assert og.accounts[role].key.hex() not in json.dumps(out)
        # A second claim: the CLI finds every leaf claimed; the distributor refuses one sent anyway.
        again = as_host(og, states[name], "claim", "--key-file", str(key), "--rpc", og.url)
        assert "already claimed" in again and "nothing to claim" in again
        c = out["claims"][0]
        leaf = og.grid.client(json.loads((states[name] / "host.json").read_text())["token"]).call(
            "GET", f"/payouts/{og.address(role)}/{c['epoch']}")["claims"][0]
        with pytest.raises(TxReverted, match="already claimed"):
            dist.claim(og.sender(role), leaf["epoch"], leaf["index"], int(leaf["amount"]),
                       [bytes.fromhex(p[2:]) for p in leaf["proof"]], gas=FORCE_GAS)
    after = og.balances(*PAID.values(), IDLE)
    for role in PAID.values():
        assert after[role] - before[role] == expected[og.address(role)]

    # The idle volunteer: an address, no VALID work, nothing to claim.
    key = tmp_path / "idle.key"
    write_key_file(key, og.accounts[IDLE].key)
    out = as_host(og, idle_state, "claim", "--key-file", str(key), "--rpc", og.url)
    assert "nothing to claim" in out and after[IDLE] == og.balances(IDLE)[IDLE]
    # All was paid out (both hosts had an address): nothing left in the distributor, nothing uncommitted.
    assert sum(expected.values()) == pool_total  # every share went to an address: exactly, no dust
    assert og.token.balance_of(dist.address) == pool_total - sum(expected.values())
    assert dist.uncommitted() == pool_total - sum(expected.values())
    # A volunteer asks only for its own hosts' addresses.
    other = og.grid.client(json.loads((states["w0"] / "host.json").read_text())["token"])
    with pytest.raises(Exception, match="404"):
        other.call("GET", f"/payouts/{og.address('stranger')}")


def parts(og: OracleGrid, reqs) -> dict[int, int]:
    """host id -> base units of these tasks' pool shares its VALID credit earned (the exact split
    of each task's share, from the ledger as the API shows it)."""
    out: dict[int, int] = {}
    for r in reqs:
        credits: dict[str, int] = {}
        for job_id, _ in og.task_row(r.task_id).jobs:
            for rep in og.admin.job(job_id)["replicas"]:
                if rep["validation"] == "VALID" and rep.get("credit"):
                    key = f"{rep['host_id']:020d}"
                    credits[key] = credits.get(key, 0) + round(rep["credit"] * 1000)
        for key, amount in payouts.split(fee_split(r.price, og.deployment.pool_fee_bps)[1], credits).items():
            out[int(key)] = out.get(int(key), 0) + amount
    return out


def test_a_host_without_an_address_is_owed_its_part_and_claims_it_once_it_gives_one(oracle_grid, tmp_path):
    og = oracle_grid.start(workers=2, epoch_seconds=1.0)
    g = og.grid
    states = {f"w{i}": g.work_root / f"w{i}" for i in range(2)}
    hosts = {name: json.loads((state / "host.json").read_text())["host_id"] for name, state in states.items()}
    paid, late = hosts["w0"], hosts["w1"]
    as_host(og, states["w0"], "payout-address", og.address("requester2"))  # w1: none yet
    dist = Distributor(og.w3, og.deployment.distributor)

    def committed_for(address: str, state) -> int:
        client = og.grid.client(json.loads((state / "host.json").read_text())["token"])
        return sum(int(c["amount"]) for c in client.call("GET", f"/payouts/{address}")["claims"])

    def owed(host: int) -> int:
        return int({h["id"]: h for h in og.admin.hosts()}[host]["owed"])

    first = [hashchain_request(og, f"owed {n}", 5_000) for n in range(2)]
    for r in first:
        og.wait_committed(r.task_id)
    early = parts(og, first)
    assert early[paid] > 0 and early[late] > 0  # both certified every job
    # The epochs pay w0 its part; w1's is owed to it (stored with the same epochs), not lost.
    wait_for(lambda: committed_for(og.address("requester2"), states["w0"]) == early[paid], 90,
             "the epochs paying w0 to be committed")
    assert owed(late) == early[late] and owed(paid) == 0
    assert dist.uncommitted() == early[late]  # still in the distributor: owed to w1
    shown = xwpy(og, "--site", str(g.cfg.dir), "hosts")
    assert (f"host {late} is owed {format_rlc(early[late])} by payout epochs built while it had no payout "
            f"address: give it one (xwpy worker payout-address)") in shown, shown
    assert f"host {paid} is owed" not in shown

    as_host(og, states["w1"], "payout-address", og.address("stranger"))
    second = hashchain_request(og, "owed and new", 5_000)
    og.wait_committed(second.task_id)
    total = parts(og, first + [second])
    wait_for(lambda: committed_for(og.address("stranger"), states["w1"]) == total[late], 90,
             "the epoch paying w1 what it is owed and its new part")
    wait_for(lambda: committed_for(og.address("requester2"), states["w0"]) == total[paid], 90,
             "the epoch paying w0 its new part")
    assert owed(late) == 0 and "is owed" not in xwpy(og, "--site", str(g.cfg.dir), "hosts")
    assert dist.uncommitted() == 0  # nothing left behind

    key = tmp_path / "stranger.key"
    write_key_file(key, og.accounts["stranger"].key)
    before = og.balances("stranger")["stranger"]
    out = json.loads(as_host(og, states["w1"], "claim", "--key-file", str(key), "--rpc", og.url, "--json"))
    assert out["paid"] == total[late] == early[late] + parts(og, [second])[late]
    assert og.balances("stranger")["stranger"] - before == total[late]
    again = as_host(og, states["w1"], "claim", "--key-file", str(key), "--rpc", og.url)
    assert "already claimed" in again and "nothing to claim" in again
    c = out["claims"][-1]
    leaf = og.grid.client(json.loads((states["w1"] / "host.json").read_text())["token"]).call(
        "GET", f"/payouts/{og.address('stranger')}/{c['epoch']}")["claims"][0]
    with pytest.raises(TxReverted, match="already claimed"):
        dist.claim(og.sender("stranger"), leaf["epoch"], leaf["index"], int(leaf["amount"]),
                   [bytes.fromhex(p[2:]) for p in leaf["proof"]], gas=FORCE_GAS)
    assert og.balances("stranger")["stranger"] - before == total[late]
