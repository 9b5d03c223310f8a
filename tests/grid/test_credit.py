"""Credit, live (issue 18): only the hosts whose results certified a job earn; a liar outvoted
earns nothing; the ledger is in the catalog (it survives a restart of the coordinator)."""

from __future__ import annotations

import signal

import pytest

from tests.grid.conftest import SQUARE
from tests.harness import liar, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("grid", ["sqlite", "postgres"], indirect=True)
def test_a_batch_with_a_liar_credits_only_the_honest_hosts(grid):
    coord = grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="square", command=SQUARE, replication=3, quorum=2)
    ids = alice.submit([{"app": "square", "args": [str(n)]} for n in range(8)], batch="credit")
    # The liar starts first, so that it surely takes part (random lies: it never agrees with anyone).
    grid.start_worker("liar", grid.user("mallory", "worker"), launcher=liar("random"))
    wait_for(lambda: any(r["status"] == "DONE" for r in alice.job(ids[0])["replicas"]), 30, "the liar's first result")
    grid.start_worker("h1", grid.user("v1", "worker"))
    grid.start_worker("h2", grid.user("v2", "worker"))
    jobs = grid.wait_final(alice, ids, timeout=120)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    hosts = {h["name"]: h for h in grid.client().hosts()}
    earned: dict[int, float] = {}
    liar_results = 0
    for jid in ids:
        valid = []
        for r in alice.job(jid)["replicas"]:
            if r["validation"] == "VALID":
                valid.append(r["credit"])
                earned[r["host_id"]] = earned.get(r["host_id"], 0.0) + r["credit"]
            else:
                assert r["credit"] is None  # outvoted, lost or aborted: nothing
            liar_results += r["host_id"] == hosts["liar"]["id"] and r["status"] == "DONE"
        assert len(valid) >= 2 and len(set(valid)) == 1 and valid[0] > 0  # the same for each that certified
    assert liar_results > 0
    assert hosts["liar"]["credit"] == 0 and hosts["liar"]["owner_credit"] == 0
    for name in ("h1", "h2"):
        assert hosts[name]["credit"] == pytest.approx(earned[hosts[name]["id"]]) and hosts[name]["credit"] > 0
        assert hosts[name]["owner_credit"] == pytest.approx(hosts[name]["credit"])  # one host each
    # Kept in the catalog, not only in the scheduler's memory.
    coord.stop(signal.SIGTERM)
    grid.start_coordinator()
    wait_for(lambda: {h["name"]: h["credit"] for h in grid.client().hosts()}
             == {n: hosts[n]["credit"] for n in hosts}, 30, "the same credit after a restart")
