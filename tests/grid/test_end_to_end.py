"""The grid end to end, with real processes on loopback: a coordinator and worker daemons."""

from __future__ import annotations

import signal
import uuid

import psutil
import pytest

from xwpy.client.api import ClientError
from tests.grid.conftest import SLOW, SQUARE, UPPER, stdout_of
from tests.harness import liar, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("grid", ["sqlite", "postgres"], indirect=True)
def test_thirty_jobs_three_workers(grid, tmp_path):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="square", command=SQUARE, replication=3, quorum=2)
    for i in range(3):
        grid.start_worker(f"w{i}", vol)
    ids = alice.submit([{"app": "square", "args": [str(n)]} for n in range(30)], batch="squares")
    jobs = grid.wait_final(alice, ids, timeout=120)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    for n, jid in enumerate(ids):
        assert stdout_of(alice, jid, tmp_path) == f"{n * n}\n"
        detail = alice.job(jid)
        valid = [r for r in detail["replicas"] if r["validation"] == "VALID"]
        assert len(valid) >= 2 and len({r["host_id"] for r in detail["replicas"]}) == len(detail["replicas"])
    assert alice.summary("squares")["COMPLETED"] == 30


def test_inputs_are_staged_and_private_data_stays_private(grid, tmp_path):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    bob = grid.client(grid.user("bob"))
    alice.register_app(name="upper", command=UPPER, replication=2, quorum=2)
    sha = alice.put_bytes(b"hello grid", name="data.txt")["sha256"]
    # Bob may neither read Alice's private data nor use it as an input.
    with pytest.raises(Exception) as e:
        bob.get_data(sha, tmp_path / "stolen")
    assert getattr(e.value, "status", 0) == 404
    with pytest.raises(Exception) as e:
        bob.submit([{"app": "upper", "args": ["x"], "inputs": [{"name": "data.txt", "sha256": sha}]}])
    assert e.value.status == 400 and e.value.field == "jobs[0].inputs[0].sha256"
    # Alice's private input is readable by the volunteers' hosts that run her job (a scientist
    # owns no host), and listable by nobody else: Bob still cannot read it.
    [jid] = alice.submit([{"app": "upper", "args": ["!"], "inputs": [{"name": "data.txt", "sha256": sha}]}])
    grid.start_worker("volunteer", vol)
    grid.start_worker("stranger", grid.user("other-volunteer", "worker"))
    grid.wait_final(alice, [jid])
    assert stdout_of(alice, jid, tmp_path) == "HELLO GRID !\n"
    hosts = {h["id"]: h["owner"] for h in grid.client().hosts()}
    assert {hosts[r["host_id"]] for r in alice.job(jid)["replicas"]} == {"vol", "other-volunteer"}
    with pytest.raises(Exception) as e:
        bob.get_data(sha, tmp_path / "stolen-later")
    assert getattr(e.value, "status", 0) == 404


def test_slots_of_one_worker_share_the_download_of_a_new_input(grid, tmp_path):
    """Jobs staging the same input at once on a multi-slot worker each get it whole (they once
    downloaded into one temporary file, and all but one failed)."""
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="upper", command=UPPER, replication=1, quorum=1)
    grid.start_worker("w", grid.user("vol", "worker"), slots=4)
    text = b"shared words " * 100_000
    sha = alice.put_bytes(text, access="public")["sha256"]
    ids = alice.submit([{"app": "upper", "args": [str(i)], "inputs": [{"name": "data.txt", "sha256": sha}],
                         "max_errors": 1} for i in range(4)])
    grid.wait_final(alice, ids, 120)
    assert [stdout_of(alice, j, tmp_path) for j in ids] == [text.decode().upper() + f" {i}\n" for i in range(4)]


def test_worker_killed_mid_job_and_never_back_is_replaced_by_an_extra_replica(grid, tmp_path):
    """Its host silent (for all the scheduler knows, asleep), the victim keeps its replica until the
    deadline; an extra replica started elsewhere completes the job, and the victim's is aborted."""
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=2, quorum=2)
    victim = grid.start_worker("victim", vol)
    [jid] = alice.submit([{"app": "slow", "args": ["1.5", "x"]}])
    running = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "RUNNING"], 30, "a running replica")
    victim.stop(signal.SIGKILL)
    for name in ("w1", "w2"):
        grid.start_worker(name, vol)
    job = grid.wait_final(alice, [jid], timeout=60)[jid]
    assert job["status"] == "COMPLETED"
    reps = {r["id"]: r for r in alice.job(jid)["replicas"]}
    assert reps[running[0]["id"]]["status"] == "ABORTED"
    assert [r["covers"] for r in reps.values() if r["covers"]] == [running[0]["id"]]
    assert stdout_of(alice, jid, tmp_path) == "done x\n"


def test_restarted_worker_gives_back_its_work_at_once(grid):
    # The restarted worker, not the lease, must end the old replica: the lease (a minute) outlasts
    # any restart, however busy the machine, so only the worker's hello can explain a LOST here.
    grid.configure_scheduler(lease_heartbeats=300)
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1)
    w = grid.start_worker("w", vol)
    marker = f"orphan-check-{uuid.uuid4().hex}"  # this run's job, not a leftover of another
    [jid] = alice.submit([{"app": "slow", "args": ["30", marker]}])
    job = wait_for(lambda: [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])],
                   30, "the job's process")[0]
    w.stop(signal.SIGKILL)
    assert job.is_running()  # in a session of its own, it outlived its worker...
    grid.start_worker("w", vol)  # same state directory, same host
    lost = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "LOST"], 60, "the old replica lost")
    assert lost[0]["error"] == "worker restarted"
    # ...until the worker came back: an orphan of a dead worker is killed, not left running.
    wait_for(lambda: not job.is_running() or job.status() == psutil.STATUS_ZOMBIE, 60, "the orphaned job to be killed")


def test_sigterm_returns_leases(grid):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1)
    w = grid.start_worker("w", vol)
    [jid] = alice.submit([{"app": "slow", "args": ["30", "x"]}])
    wait_for(lambda: any(r["status"] == "RUNNING" for r in alice.job(jid)["replicas"]), 30, "a running replica")
    assert w.stop(signal.SIGTERM) == 0
    [r] = alice.job(jid)["replicas"]
    assert r["status"] == "LOST" and r["error"] == "released by worker"


def test_a_lying_worker_is_outvoted(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="square", command=SQUARE, replication=3, quorum=2)
    ids = alice.submit([{"app": "square", "args": [str(n)]} for n in range(12)])
    # Three volunteers, one of them a liar — who starts first, so that it surely takes part.
    grid.start_worker("liar", grid.user("mallory", "worker"), launcher=liar("random"))
    wait_for(lambda: any(r["status"] == "DONE" for r in alice.job(ids[0])["replicas"]), 30, "the liar's first result")
    grid.start_worker("h1", grid.user("v1", "worker"))
    grid.start_worker("h2", grid.user("v2", "worker"))
    jobs = grid.wait_final(alice, ids, timeout=120)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    for n, jid in enumerate(ids):
        assert stdout_of(alice, jid, tmp_path) == f"{n * n}\n"
    hosts = {h["name"]: h for h in grid.client().hosts()}
    liar_id = hosts["liar"]["id"]
    liar_results = [r for jid in ids for r in alice.job(jid)["replicas"] if r["host_id"] == liar_id and r["status"] == "DONE"]
    assert liar_results and all(r["validation"] == "INVALID" for r in liar_results)
    assert hosts["liar"]["reputation"] < 0 and hosts["h1"]["reputation"] > 0  # caught: in debt


@pytest.mark.parametrize("grid", ["sqlite", "postgres"], indirect=True)
def test_coordinator_killed_and_restarted(grid, tmp_path):
    # No worker dies here, so no replica may be lost: the lease (a minute) outlasts the restart and
    # the workers' reconnection, however busy the machine (with the 0.6 s lease of a 0.2 s heartbeat
    # a worker backing off could lose its replica and take the job again, on the same host).
    grid.configure_scheduler(lease_heartbeats=300)
    coord = grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=3, quorum=2)
    for i in range(3):
        grid.start_worker(f"w{i}", vol)
    ids = alice.submit([{"app": "slow", "args": ["0.2", str(n)]} for n in range(20)])
    wait_for(lambda: alice.summary()["COMPLETED"] >= 3, 60, "some jobs done")
    coord.stop(signal.SIGKILL)
    grid.start_coordinator()
    alice.close()
    jobs = grid.wait_final(alice, ids, timeout=120)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    for n, jid in enumerate(ids):
        assert stdout_of(alice, jid, tmp_path) == f"done {n}\n"
        reps = alice.job(jid)["replicas"]
        assert sum(r["validation"] == "VALID" for r in reps) >= 2
        # (the replicas in full if not: which was lost, why, and where it ran again)
        assert len({r["host_id"] for r in reps}) == len(reps), [
            {k: r.get(k) for k in ("id", "host_id", "status", "validation", "error", "covers")} for r in reps]
    assert alice.summary()["COMPLETED"] == 20


def test_health_of_a_working_coordinator(grid):
    grid.start_coordinator()
    status, body = grid.client(token="not-a-token").health()  # load balancers have no token
    assert status == 200 and body["failed"] == [], body
    assert set(body["checks"]) == {"catalog", "blobs"}  # no oracle on this site: no chain check
    assert body["checks"]["catalog"]["detail"].startswith("writable")


def test_metrics_count_what_the_catalog_holds(grid):
    from prometheus_client.parser import text_string_to_metric_families

    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="square", command=SQUARE, replication=2, quorum=2)
    for name in ("w1", "w2"):
        grid.start_worker(name, grid.user(f"vol-{name}", "worker"))
    ids = alice.submit([{"app": "square", "args": [str(n)]} for n in range(5)])
    grid.wait_final(alice, ids, timeout=60)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(grid.client().metrics()) for s in fam.samples}
    counts = alice.summary()
    for status, n in counts.items():
        assert samples[("xwpy_jobs", (("status", status),))] == n
    assert samples[("xwpy_jobs_certified_total", ())] == counts["COMPLETED"] == 5
    assert samples[("xwpy_certification_seconds_count", ())] == 5
    assert samples[("xwpy_certification_seconds_bucket", (("le", "+Inf"),))] == 5
    assert samples[("xwpy_replicas_dispatched_total", ())] >= 10
    assert samples[("xwpy_hosts", (("state", "alive"),))] == 2
    assert samples[("xwpy_hosts", (("state", "suspended"),))] == 0
    assert samples[("xwpy_queue_jobs", ())] == 0  # all final
    assert samples[("xwpy_catalog_commits_total", ())] > 0
    with pytest.raises(ClientError) as e:
        alice.metrics()  # an operator's view, not a user's
    assert e.value.status == 403


def test_metrics_count_lease_expiries_and_time_catalog_writes(grid):
    """A worker killed mid-job never comes back: once its replica's deadline passes the reaper
    loses it (an expired lease), and another worker finishes the job. /metrics counts the expiry
    as the catalog shows it, and times every write transaction."""
    from prometheus_client.parser import text_string_to_metric_families

    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    # Room for a run of 5 s on a busy machine; passed for a replica whose host died.
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1, deadline=20)
    victim = grid.start_worker("victim", vol)
    [jid] = alice.submit([{"app": "slow", "args": ["5", "x"]}])
    wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "RUNNING"], 30, "a running replica")
    victim.stop(signal.SIGKILL)
    wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "LOST"], 60, "the deadline to pass")
    grid.start_worker("w", vol)  # only now: no other host may take an extra replica before
    grid.wait_final(alice, [jid], timeout=60)

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(grid.client().metrics()) for s in fam.samples}
    replicas = alice.job(jid)["replicas"]
    expired = [r for r in replicas if r["status"] == "LOST"]
    assert len(expired) == 1 and expired[0]["error"] == "deadline passed"
    assert samples[("xwpy_leases_expired_total", ())] == len(expired)
    assert samples[("xwpy_replicas_lost_total", ())] == len(expired)
    assert [r["status"] for r in replicas if r not in expired] == ["DONE"]
    writes = samples[("xwpy_catalog_write_seconds_count", ())]
    # (read after the commits counter: a commit between the two reads adds to the count only)
    assert writes >= samples[("xwpy_catalog_commits_total", ())] > 0
    assert samples[("xwpy_catalog_write_seconds_bucket", (("le", "+Inf"),))] == writes
    assert 0 < samples[("xwpy_catalog_write_seconds_sum", ())] < 600


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_log_names_callers_never_tokens(grid, fmt):
    import dataclasses
    import json

    from xwpy import config

    grid.cfg = dataclasses.replace(grid.cfg, coordinator=dataclasses.replace(grid.cfg.coordinator, log_format=fmt))
    (grid.cfg.dir / config.CONFIG_NAME).write_text(config.render(grid.cfg))
    coordinator = grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice_token = grid.user("alice")
    alice = grid.client(alice_token)
    alice.register_app(name="square", command=SQUARE, replication=1, quorum=1)
    grid.start_worker("w", vol)
    [jid] = alice.submit([{"app": "square", "args": ["7"]}])
    grid.wait_final(alice, [jid], timeout=60)
    host_token = json.loads((grid.work_root / "w" / "host.json").read_text())["token"]
    with pytest.raises(ClientError):
        grid.client("xwu_forged-token-0123456789").job(jid)
    log = coordinator.output()
    for secret in (alice_token, vol, grid.admin_token, host_token, "forged-token"):
        assert secret not in log
    if fmt == "json":
        events = [json.loads(line) for line in log.splitlines() if line.strip()]
        access = [e for e in events if e.get("log_namespace") == "xwpy.access"]
        assert {(e["method"], e["status"], e["caller"]) for e in access} >= {
            ("POST", 200, "alice"), ("GET", 200, "alice"), ("GET", 401, "-")}
        assert any(e["caller"].startswith("vol/host ") and e["path"] == "/api/v1/work/request" for e in access)
        assert all(isinstance(e["ms"], float) and e["ms"] >= 0 for e in access)
        # and one event per state change of the job, once committed
        # (RUNNING may be committed with COMPLETED, as one step, when the result comes first)
        changes = [(e["first"], e["last"], e["status"]) for e in events if e.get("log_namespace") == "xwpy.jobs"]
        assert changes in ([(jid, jid, s) for s in ("PENDING", "RUNNING", "COMPLETED")],
                           [(jid, jid, s) for s in ("PENDING", "COMPLETED")])
    else:
        assert "POST /api/v1/jobs 200 " in log and " ms alice" in log
        assert " 401 " in log
        changes = [line.split("] ", 1)[1] for line in log.splitlines() if "[xwpy.jobs#info]" in line]
        assert changes in ([f"job {jid} {s}" for s in ("PENDING", "RUNNING", "COMPLETED")],
                           [f"job {jid} {s}" for s in ("PENDING", "COMPLETED")])
