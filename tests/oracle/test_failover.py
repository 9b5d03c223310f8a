"""The oracle in a failover (issue 17): two coordinators on one PostgreSQL catalog, one chain node
(the embedded chain, served as a process of its own: a chain that died with a coordinator could not
outlive it), requests paid on chain. The oracle runs only in the leader (it starts once the lease
is taken); the leader dies at its first commit — stored, signed, not yet sent — and the standby
takes the catalog over and finishes: each task committed exactly once, none lost."""

from __future__ import annotations

import signal

import pytest

from tests.grid.test_standby import client_of, health
from tests.harness import wait_for
from tests.oracle.conftest import start_chain
from tests.oracle.oraclegrid import OracleGrid, hashchain
from xwpy.client.chainclient import request_direct
from xwpy.oracle.chainsetup import ensure_demo_deployment, write_key_file
from xwpy.oracle.handlers import default_handlers

pytestmark = pytest.mark.slow

TASKS = 4
FOLLOWS = "follows hub"  # the oracle's first line, once started


@pytest.mark.parametrize("grid", ["postgres"], indirect=True)
def test_a_leader_killed_between_storing_and_sending_a_commit_each_task_is_committed_once(grid, tmp_path):
    node = start_chain("embedded", state_dir=tmp_path / "chain")
    try:
        _failover(grid, node)
    finally:
        node.stop()


def _failover(grid, node):
    og = OracleGrid(grid, "node", node)
    deployment = grid.cfg.dir / "chain" / "deployment.json"
    deployment.parent.mkdir(parents=True, exist_ok=True)
    ensure_demo_deployment(node.web3(), deployment, default_handlers())
    write_key_file(grid.cfg.dir / "oracle.key", og.accounts["oracle"].key)
    # The embedded chain mines a block per transaction and never reorganises: no confirmations.
    # No payout epoch: every transaction of the oracle's account is then a task's commit.
    grid.enable_oracle(chain=node.url, deployment=str(deployment), key_file="oracle.key", poll_seconds=0.2,
                       confirmations=0, epoch_seconds=0)
    grid.configure_scheduler(lease_heartbeats=300)  # replicas outlive the takeover
    grid.configure("catalog", standby_poll_seconds=0.2)
    # The leader dies (SIGKILL) at its oracle's first broadcast: after the signed commit is stored.
    a = grid.start_coordinator(launcher=("tests.oracle.killed_at_send",))
    b_site = grid.add_coordinator("second")  # (its configuration: the same oracle, key and node)
    b = grid.start_coordinator(site=b_site)
    assert health(client_of(grid, b_site))[0] == 503
    assert FOLLOWS in a.output() and FOLLOWS not in b.output()  # a standby runs no oracle
    grid.url = ",".join(f"https://127.0.0.1:{cfg.coordinator.port}" for cfg in (grid.cfg, b_site))
    og.use_chain(node.url, str(deployment))
    og.admin = grid.client()
    for i in range(4):  # given both coordinators: they move on by themselves
        grid.start_worker(f"w{i}", grid.user(f"volunteer{i}", "worker"))
    oracle = og.address("oracle")
    sent_before = og.w3.eth.get_transaction_count(oracle)
    texts = [f"failover {i}" for i in range(TASKS)]
    reqs = [request_direct(og.target, og.sender("requester"), "hashchain",
                           ('{"text":"%s","rounds":1000}' % t).encode(), 600) for t in texts]

    assert a.popen.wait(180) == -signal.SIGKILL  # at its first commit, whatever else was in flight
    assert og.w3.eth.get_transaction_count(oracle) == sent_before  # it sent nothing
    wait_for(lambda: (health(client_of(grid, b_site)) or (0,))[0] == 200, 60, "the standby to lead")
    rows = [og.wait_committed(r.task_id, timeout=180) for r in reqs]

    for r, row, text in zip(reqs, rows, texts):
        [event] = og.hub.completed_events(og.deployment.block, task_id=r.task_id)
        assert event.result.decode() == '{"sha256":"%s"}' % hashchain(text, 1000)
        assert "0x" + event.ref.tx_hash.hex() == row.commit_tx  # the commit the catalog holds is the one mined
    # One transaction per task from the oracle's account: no second commit (it would revert, but
    # it would be there), no filler, nothing of the dead leader's sent twice.
    assert og.w3.eth.get_transaction_count(oracle) == sent_before + TASKS
    jobs = og.oracle_jobs()  # one job per task, however the kill fell
    assert sorted(j["id"] for j in jobs) == sorted(jid for row in rows for jid, _ in row.jobs)
    assert len(jobs) == TASKS
    out = b.output()
    assert "Traceback" not in out, out[-3000:]
    assert out.index("leading the catalog (epoch 2)") < out.index(FOLLOWS)  # its oracle: once it leads
