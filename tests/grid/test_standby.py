"""Two coordinators on one catalog (issue 17, fencing): one leads, the other waits as a standby;
a leader paused past its lease is replaced, and once it wakes its writes are refused and it exits."""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import create_engine, text

from tests.grid.conftest import SLOW
from tests.harness import wait_for
from xwpy.client.api import Client, ClientError, Endpoint

FENCED = "coordinator stopped: the catalog was taken over"


def client_of(grid, cfg, token: str | None = None) -> Client:
    return Client(Endpoint(f"https://127.0.0.1:{cfg.coordinator.port}", token or grid.admin_token, grid.cfg.ca_cert))


def health(client: Client) -> tuple[int, dict] | None:
    try:
        return client.health()
    except (ClientError, OSError):
        return None


@pytest.mark.parametrize("grid", ["sqlite", "postgres"], indirect=True)
def test_two_coordinators_on_one_catalog_one_leads(grid):
    first = grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1)
    [jid] = alice.submit([{"app": "slow", "args": ["0", "x"]}])
    second_site = grid.add_coordinator("second")
    second = grid.start_coordinator(site=second_site)
    standby = client_of(grid, second_site)
    status, body = standby.health()
    assert status == 503 and body["status"] == "standby", body
    assert "standby: the catalog is led by" in second.output()
    with pytest.raises(ClientError) as e:
        standby.summary()
    assert e.value.status == 503 and e.value.code == "standby"
    assert grid.client().health()[0] == 200  # the first still serves
    first.stop(signal.SIGTERM)  # it lets go: the standby leads, with the state of the catalog
    wait_for(lambda: (health(standby) or (0,))[0] == 200, 60, "the standby to lead")
    assert "leading the catalog (epoch 2)" in second.output()
    alice2 = client_of(grid, second_site, alice.endpoint.token)
    assert alice2.job(jid)["status"] == "PENDING"
    # Ids continue from the catalog's: the new leader read them once it held the lease.
    assert alice2.submit([{"app": "slow", "args": ["0", "y"]}]) == [jid + 1]


@pytest.mark.parametrize("grid", ["postgres"], indirect=True)
def test_paused_leader_is_replaced_and_its_writes_refused(grid, tmp_path):
    """SIGSTOP the leader past its lease: the standby ends its sessions, takes the catalog and
    finishes the work with workers of its own. SIGCONT the old leader: it still believes it holds
    replicas (their leases long expired) and its lease; every write it tries is refused, it exits
    in one line, and the catalog's jobs and replicas are exactly as the new leader left them."""
    grid.configure("catalog", lease_seconds=4.0, standby_poll_seconds=0.2)
    old = grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=2, quorum=2)
    for i in range(2):
        grid.start_worker(f"w{i}", vol)
    ids = alice.submit([{"app": "slow", "args": ["0.5", str(n)]} for n in range(12)])
    wait_for(lambda: alice.summary()["COMPLETED"] >= 2, 60, "some jobs certified")
    new_site = grid.add_coordinator("second")
    new = grid.start_coordinator(site=new_site)
    assert health(client_of(grid, new_site))[0] == 503
    wait_for(lambda: any(r["status"] in ("ASSIGNED", "RUNNING") for j in alice.jobs() if j["id"] in ids
                         for r in alice.job(j["id"])["replicas"]), 60, "replicas held by the old leader's workers")
    old.send(signal.SIGSTOP)
    try:
        wait_for(lambda: (health(client_of(grid, new_site)) or (0,))[0] == 200, 60, "the standby to take over")
        assert "leading the catalog (epoch 2)" in new.output()
        new_alice = client_of(grid, new_site, alice.endpoint.token)
        vol2 = client_of(grid, new_site).add_user("vol2", "worker")["token"]
        for i in range(2, 4):  # workers of the new leader: the old one's are stuck talking to it
            grid.spawn(f"w{i}", "worker", "--coordinator", f"https://127.0.0.1:{new_site.coordinator.port}",
                       "--ca", str(grid.cfg.ca_cert), "--state", str(grid.work_root / f"w{i}"), "--name", f"w{i}",
                       "--wait", "2", "--no-idle-check", env={"XWPY_TOKEN": vol2})
        done = grid.wait_final(new_alice, ids, timeout=120)
        assert {j["status"] for j in done.values()} == {"COMPLETED"}
        before = snapshot(grid.cfg.database_url)
    finally:
        old.send(signal.SIGCONT)
    assert old.popen.wait(60) != 0
    out = old.output()
    assert out.count(FENCED) == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert snapshot(grid.cfg.database_url) == before  # not one row of jobs or replicas written
    for jid in ids:  # each certified once: one result, its quorum of valid replicas
        reps = new_alice.job(jid)["replicas"]
        assert sum(r["validation"] == "VALID" for r in reps) == 2, reps
    assert health(client_of(grid, new_site))[0] == 200


def snapshot(url: str) -> tuple[list, list]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return (conn.execute(text("SELECT * FROM jobs ORDER BY id")).all(),
                    conn.execute(text("SELECT * FROM replicas ORDER BY id")).all())
    finally:
        engine.dispose()
