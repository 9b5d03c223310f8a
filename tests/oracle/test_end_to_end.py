"""The oracle end to end, in real processes: a requester pays RLC on chain, the coordinator's
oracle runs the computation on volunteers' workers, the certified result is committed on chain
and everyone is paid exactly; on the embedded chain (served by the coordinator) and on ganache."""

from __future__ import annotations

import json
import signal

import pytest
from tests.oracle.oraclegrid import OracleGrid, hashchain

from xwpy.apps.vanitygen import combine
from xwpy.chain.contracts import TaskStatus as OnChain
from xwpy.chain.contracts import fee_split
from xwpy.chain.tx import TxReverted
from xwpy.chain.deploy import deploy_consumer
from xwpy.client.api import ClientError
from xwpy.client.chainclient import describe, request_direct, request_vanity, wait_final
from tests.harness import wait_for

pytestmark = pytest.mark.slow

ROLES = ("requester", "app_owner", "pool")


@pytest.fixture(params=["embedded", "ganache"])
def oracle_grid(request, grid):
    node = request.getfixturevalue("ganache_node") if request.param == "ganache" else None
    return OracleGrid(grid, request.param, node)


def hashchain_request(og: OracleGrid, text: str, rounds: int, ttl: int = 600, role: str = "requester"):
    params = ('{"text":"%s","rounds":%d}' % (text, rounds)).encode()
    return request_direct(og.target, og.sender(role), "hashchain", params, ttl)


def test_a_paid_request_is_computed_on_the_grid_and_committed_once(oracle_grid):
    og = oracle_grid.start(workers=3)
    before = og.balances(*ROLES)
    req = hashchain_request(og, "hello grid", 20_000)
    row = og.wait_committed(req.task_id)

    expected = hashchain("hello grid", 20_000)
    info = describe(og.target, req.task_id)
    assert info["status"] == "COMPLETED" and info["result"] == '{"sha256":"%s"}' % expected
    [event] = og.hub.completed_events(og.deployment.block, task_id=req.task_id)
    assert "0x" + event.ref.tx_hash.hex() == row.commit_tx and event.digest.hex() == row.digest

    # Paid exactly: the requester the price, the owner and the pool their shares of it.
    to_owner, to_pool = fee_split(req.price, og.deployment.pool_fee_bps)
    assert req.price == 10**9 and to_pool > 0
    after = og.balances(*ROLES)
    assert after["requester"] == before["requester"] - req.price
    assert after["app_owner"] == before["app_owner"] + to_owner
    assert after["pool"] == before["pool"] + to_pool

    # One grid job, certified by two agreeing replicas on distinct hosts; its digest is on chain.
    [job] = og.oracle_jobs()
    assert row.jobs == [(job["id"], "0")] and job["status"] == "COMPLETED" and job["result_sha256"] == row.digest
    replicas = og.admin.job(job["id"])["replicas"]
    valid = [r for r in replicas if r["validation"] == "VALID"]
    assert len(valid) >= 2 and len({r["host_id"] for r in valid}) == len(valid)

    # The operator's view: the task committed, the follower near the head, the node healthy.
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(s.labels.items())): s.value
               for fam in text_string_to_metric_families(og.admin.metrics()) for s in fam.samples}
    assert samples[("xwpy_oracle_tasks", (("status", "COMMITTED"),))] == 1
    assert 0 <= samples[("xwpy_oracle_lag_blocks", ())] <= 64
    status, health = og.admin.health()
    assert status == 200 and health["checks"]["chain"]["ok"], health


def test_a_vanity_address_paid_through_the_consumer_arrives_in_the_consumer(oracle_grid):
    og = oracle_grid.start(workers=3)
    secret, pub = combine.keygen()  # the requester's split key: the grid only sees pub
    consumer = deploy_consumer(og.sender("deployer"), og.deployment, pub.hex())
    before = og.balances(*ROLES)
    req = request_vanity(og.target, og.sender("requester"), consumer.address, "1x", ttl=600)
    row = og.wait_committed(req.task_id)

    got = consumer.result(req.task_id)
    assert got is not None and got == row.result and len(got) <= 400
    result = json.loads(got)
    key = combine.combine_parts(int(result["partial_key"], 16), result["candidate"], secret)
    assert key.address == result["address"] and key.address.startswith("1x")
    [event] = og.hub.completed_events(og.deployment.block, task_id=req.task_id)
    assert event.callback_ok and event.result == got and event.digest.hex() == row.digest

    to_owner, to_pool = fee_split(req.price, og.deployment.pool_fee_bps)
    assert req.price == 10 * 10**9
    after = og.balances(*ROLES)
    assert (after["requester"], after["app_owner"], after["pool"]) == (
        before["requester"] - req.price, before["app_owner"] + to_owner, before["pool"] + to_pool)
    assert og.token.balance_of(consumer.address) == 0  # the consumer only passed the payment on

    # The winning unit was certified by the app's verifier on the grid; its archive is the digest.
    winner = og.admin.job(row.result_job)
    assert winner["status"] == "COMPLETED" and winner["result_sha256"] == row.digest
    assert any(r["verdict"] == "verified" for r in winner["replicas"])
    assert {j["app"] for j in og.oracle_jobs()} == {"oracle-vanitygen"}


def test_past_its_deadline_a_request_is_refunded_and_only_the_oracle_may_commit(oracle_grid):
    og = oracle_grid.start(workers=0)  # nobody computes
    before = og.balances(*ROLES)
    req = hashchain_request(og, "never", 10, ttl=120)
    wait_for(lambda: (r := og.task_row(req.task_id)) is not None and r.status.value == "RUNNING", 30, "the oracle to take it")
    # Anyone but the oracle is refused, on chain.
    with pytest.raises(TxReverted, match="caller is not the oracle"):
        og.hub.commit(og.sender("stranger"), req.task_id, b"\x01" * 32, b"forged", gas=1_000_000)
    with pytest.raises(TxReverted, match="deadline not passed"):
        og.hub.refund(og.sender("requester"), req.task_id, gas=1_000_000)
    og.advance(180)
    row = wait_for(lambda: (r := og.task_row(req.task_id)).status.value == "EXPIRED" and r, 30, "the oracle to give up")
    assert "deadline" in row.error
    wait_for(lambda: all(j["status"] == "CANCELLED" for j in og.oracle_jobs()), 30, "its jobs cancelled")
    og.hub.refund(og.sender("requester"), req.task_id)
    assert og.balances(*ROLES) == before  # the whole price back, nobody else paid
    assert og.hub.task(req.task_id).status is OnChain.REFUNDED
    assert og.hub.completed_events(og.deployment.block, task_id=req.task_id) == []


def test_a_coordinator_killed_mid_task_neither_loses_nor_repeats_it(oracle_grid):
    _killed_mid_task(oracle_grid)


@pytest.mark.parametrize("grid", ["postgres"], indirect=True)
def test_the_same_with_the_catalog_in_postgresql(grid):
    _killed_mid_task(OracleGrid(grid, "embedded"))


def _killed_mid_task(oracle_grid):
    # Four hosts: replicas lost in the restart bar their hosts from the job, and two must agree.
    og = oracle_grid.start(workers=4)
    before = og.balances(*ROLES)
    slow = [hashchain_request(og, f"slow {i}", 1_500_000) for i in range(3)]  # a second or two each
    wait_for(lambda: any(j["status"] == "RUNNING" for j in og.oracle_jobs()), 60, "the grid to start on them")
    og.grid.coordinator.stop(signal.SIGKILL)
    late = hashchain_request(og, "late", 10) if og.kind == "ganache" else None  # while the oracle is down
    og.start_coordinator()
    reqs = slow + ([late] if late else [])
    rows = [og.wait_committed(r.task_id, timeout=120) for r in reqs]

    for r, row in zip(reqs, rows):
        [event] = og.hub.completed_events(og.deployment.block, task_id=r.task_id)
        assert event.result.decode() == '{"sha256":"%s"}' % hashchain(*(("late", 10) if r is late else (f"slow {slow.index(r)}", 1_500_000)))
    # Exactly one job per task, however the kill fell.
    jobs = og.oracle_jobs()
    assert sorted(j["id"] for j in jobs) == sorted(jid for row in rows for jid, _ in row.jobs)
    assert len(jobs) == len(reqs)
    price = reqs[0].price
    to_owner, to_pool = fee_split(price, og.deployment.pool_fee_bps)
    after = og.balances(*ROLES)
    n = len(reqs)
    assert (after["requester"], after["app_owner"], after["pool"]) == (
        before["requester"] - n * price, before["app_owner"] + n * to_owner, before["pool"] + n * to_pool)


def test_the_cli_requests_waits_and_shows_the_result(oracle_grid):
    from click.testing import CliRunner

    from xwpy.client.cli import cli
    from xwpy.client.commands import register

    register(cli)
    og = oracle_grid.start(workers=2)
    site = str(og.grid.cfg.dir)
    runner = CliRunner()
    out = runner.invoke(cli, ["--site", site, "chain", "request", "hashchain", '{"text":"cli","rounds":7}',
                              "--account", "requester2", "--timeout", "90"])
    assert out.exit_code == 0, out.output
    assert hashchain("cli", 7) in out.output and "COMPLETED" in out.output
    task_id = int(out.output.split()[1])
    status = runner.invoke(cli, ["--site", site, "chain", "status", str(task_id), "--json"])
    assert status.exit_code == 0, status.output
    import json

    info = json.loads(status.output)
    assert info["status"] == "COMPLETED" and info["oracle"]["status"] == "COMMITTED" and len(info["oracle"]["jobs"]) == 1
    assert wait_final(og.target, task_id, 1).name == "COMPLETED"
    # The record comes from the coordinator's API, for admins only.
    record = og.grid.client().call("GET", f"/chain/tasks/{task_id}")
    assert record["status"] == "COMMITTED" and record["job_statuses"] == {"COMPLETED": 1}
    # The dashboard's chain section: every task the oracle saw, with its jobs and commit.
    [listed] = [t for t in og.grid.client().call("GET", "/chain/tasks")["tasks"] if t["task"] == task_id]
    assert listed["status"] == "COMMITTED" and listed["jobs"] == record["jobs"] and listed["commit_tx"] == record["commit_tx"]
    stranger = og.grid.client(og.grid.user("eve"))
    with pytest.raises(ClientError) as refused:
        stranger.call("GET", f"/chain/tasks/{task_id}")
    assert refused.value.status == 403
    with pytest.raises(ClientError) as unknown:
        og.grid.client().call("GET", f"/chain/tasks/{task_id + 1000}")
    assert (unknown.value.status, unknown.value.code) == (404, "not_found")
    # A stopped site's chain is not looked for at an address that no longer answers.
    assert og.grid.coordinator.stop(signal.SIGTERM) == 0
    gone = runner.invoke(cli, ["--site", site, "chain", "status", str(task_id)])
    assert gone.exit_code == 1 and "no oracle chain running for site" in gone.output


def test_a_node_url_with_a_key_is_never_logged_nor_written_in_clear(grid, ganache_node):
    """Issue 18, 7: providers put the API key in the URL (user info, path or query); the
    coordinator logged it and wrote it to run/chain.json. The CLI finds the node all the same."""
    port = ganache_node.url.rsplit(":", 1)[1]
    secrets = ("PASSWORDX", "QUERYKEYX")  # (ganache serves no other path than /: see the unit test)
    url = f"http://xwpy:{secrets[0]}@127.0.0.1:{port}/?apikey={secrets[1]}"
    og = OracleGrid(grid, "ganache", ganache_node, chain_url=url).start(workers=0)
    req = hashchain_request(og, "secret url", 10)
    wait_for(lambda: (r := og.task_row(req.task_id)) is not None and r.status.value == "RUNNING", 30,
             "the oracle to follow the node through that URL")
    run = (grid.cfg.dir / "run" / "chain.json").read_text()
    assert json.loads(run)["url"] == f"http://127.0.0.1:{port}/…"
    log = grid.coordinator.output()
    assert "follows hub" in log and f"127.0.0.1:{port}" in log
    for secret in secrets:
        assert secret not in run and secret not in log
    from click.testing import CliRunner

    from xwpy.client.cli import cli
    from xwpy.client.commands import register

    register(cli)
    out = CliRunner().invoke(cli, ["--site", str(grid.cfg.dir), "chain", "status", str(req.task_id), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["status"] == "REQUESTED"
