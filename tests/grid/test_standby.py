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


def certified_once(url: str, ids: list[int]) -> int:
    """Assert from the catalog that the jobs ``ids`` (all of them) were each certified exactly once
    after two takeovers: all COMPLETED, each with its quorum of VALID replicas, and the hosts'
    credit the sum of the replicas' (a job certified twice would have paid twice). The hosts counted."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status")).all() == [("COMPLETED", len(ids))]
            valid = dict(conn.execute(text("SELECT job_id, count(*) FROM replicas WHERE validation = 'VALID' "
                                           "GROUP BY job_id")).all())
            assert sorted(valid) == sorted(ids) and min(valid.values()) >= 2
            replica_credit = conn.execute(text("SELECT coalesce(sum(credit), 0) FROM replicas")).scalar()
            host_credit = conn.execute(text("SELECT coalesce(sum(credit), 0) FROM hosts")).scalar()
            assert replica_credit == pytest.approx(host_credit, rel=1e-9, abs=1e-6)
            assert conn.execute(text("SELECT epoch FROM leadership")).scalar() == 3  # two takeovers
            return conn.execute(text("SELECT count(*) FROM hosts")).scalar()
    finally:
        engine.dispose()


def kill_the_leader_at(grid, first, second, completed, counts) -> None:
    """Each time ``completed()`` reaches the next of ``counts``, SIGKILL the leader (the first site
    leads at the start), wait until the other serves, and start the killed one again, as the standby."""
    sites = {"a": first, "b": second}
    leader, standby = "a", "b"
    for at_least in counts:
        wait_for(lambda: completed() >= at_least, 300, f"{at_least} jobs certified")
        sites[leader][1].stop(signal.SIGKILL)
        wait_for(lambda: (health(client_of(grid, sites[standby][0])) or (0,))[0] == 200, 60, "the standby to lead")
        proc = grid.start_coordinator(site=None if leader == "a" else sites[leader][0])  # back, as the standby
        sites[leader] = (sites[leader][0], proc)
        leader, standby = standby, leader


@pytest.mark.parametrize("grid", ["postgres"], indirect=True)
def test_failover_behind_haproxy_leader_killed_twice(grid):
    """500 jobs (replication 2, quorum 2) on 4 workers that know only HAProxy's address; the leader
    is SIGKILLed twice mid-run (and started again, as the standby): every job certified exactly
    once — 500 jobs in the catalog and in the client's view, each COMPLETED with its quorum, the
    hosts' credit the sum of the replicas' (a job certified twice would have paid twice)."""
    from tests.grid.conftest import SQUARE

    # The workers' replicas outlive a takeover (their lease is a minute): none is lost for it.
    grid.configure_scheduler(lease_heartbeats=300)
    grid.configure("catalog", standby_poll_seconds=0.2)
    a = grid.start_coordinator()
    b_site = grid.add_coordinator("second")
    b = grid.start_coordinator(site=b_site)
    if grid.haproxy_binary() is None:  # never a skip: CI installs it (.ci/run)
        pytest.fail("the failover test runs HAProxy: apt install haproxy")
    url = grid.start_haproxy([grid.cfg.coordinator.port, b_site.coordinator.port])
    grid.url = url  # the workers and clients of this grid know only HAProxy's address
    wait_for(lambda: (health(grid.client()) or (0,))[0] == 200, 60, "HAProxy to reach the leader")
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="square", command=SQUARE, replication=2, quorum=2)
    for i in range(4):
        grid.start_worker(f"w{i}", vol)
    ids = alice.submit([{"app": "square", "args": [str(n)]} for n in range(500)], retry_seconds=60)
    assert len(set(ids)) == 500

    def completed() -> int:
        try:
            return alice.summary()["COMPLETED"]
        except (ClientError, OSError):
            return 0

    kill_the_leader_at(grid, (grid.cfg, a), (b_site, b), completed, (100, 250))
    done = grid.wait_final(alice, ids, timeout=600)
    assert {j["status"] for j in done.values()} == {"COMPLETED"}
    assert alice.summary()["COMPLETED"] == 500 and len(list(alice.jobs())) == 500
    certified_once(grid.cfg.database_url, ids)


@pytest.mark.parametrize("grid", ["postgres"], indirect=True)
def test_failover_without_a_load_balancer_workers_and_clients_move_on(grid):
    """No HAProxy: the 4 workers (``--coordinator A,B``), the admin's client and the user's Python
    API (``Grid([A, B], ...)``) are given both coordinators' URLs. 200 jobs (replication 2, quorum
    2); the leader is SIGKILLed (and started again, as the standby), then the new leader too: every
    worker and client moves on by itself (a refused connection, a 503 standby: the next URL), every
    job is certified exactly once, and the futures' wait completes with every result."""
    from tests.grid.conftest import SQUARE
    from xwpy.client.futures import Grid as Futures

    grid.configure_scheduler(lease_heartbeats=300)  # replicas outlive a takeover: none lost for it
    grid.configure("catalog", standby_poll_seconds=0.2)
    a = grid.start_coordinator()
    b_site = grid.add_coordinator("second")
    b = grid.start_coordinator(site=b_site)
    urls = [f"https://127.0.0.1:{cfg.coordinator.port}" for cfg in (grid.cfg, b_site)]
    grid.url = ",".join(urls)  # what the workers and clients of this grid are given
    vol = grid.user("vol", "worker")
    alice_token = grid.user("alice")
    alice = grid.client(alice_token)
    alice.register_app(name="square", command=SQUARE, replication=2, quorum=2)
    for i in range(4):
        grid.start_worker(f"w{i}", vol)
    with Futures(urls, grid.cfg.ca_cert, alice_token) as api:
        futures = [api.submit("square", n) for n in range(200)]
        ids = [f.job_id for f in futures]

        def completed() -> int:
            try:
                return alice.summary()["COMPLETED"]
            except ClientError:  # (the rotation of this client is tested too: it must find the leader)
                return 0

        kill_the_leader_at(grid, (grid.cfg, a), (b_site, b), completed, (40, 110))
        results = [int(f.result(timeout=600)) for f in futures]  # the client's wait completes
    assert results == [n * n for n in range(200)]
    assert alice.summary()["COMPLETED"] == 200
    assert alice.coordinators.current == urls[0]  # where the leader is now: a, after b was killed
    hosts = certified_once(grid.cfg.database_url, ids)
    assert hosts == 4  # each worker registered once, whichever coordinator it met
    for i in range(4):  # every worker moved on by itself, to b and back to a
        out = next(p for p in grid.procs if p.name == f"w{i}").output()
        assert "Traceback" not in out, out[-3000:]
