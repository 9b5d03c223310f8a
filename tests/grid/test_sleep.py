"""Sleep is not death (issue 12 item 1), with real processes: a worker whose whole process tree is
SIGSTOPped for ten leases (a laptop asleep) keeps its replica; meanwhile the scheduler starts an
extra replica elsewhere; woken, the sleeper finishes its job, which is certified once, and the
extra is aborted.

Every wait is on a condition seen through the API; the lease is short only where the outcome
cannot depend on it: the extra's host is put to sleep too as soon as its replica runs, so the order
in which the two replicas could finish is the test's, not the machine's."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.harness import wait_for
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow

HEARTBEAT = 0.5
LEASE = HEARTBEAT * 4
# Forty steps of a quarter second, its progress written at each: a step interrupted by a stop ends
# at once when continued, so the work left after a sleep is what was left before it.
NAP = ["{python}", "-c", "import time\nfor i in range(40):\n    open('progress', 'w').write(str(i / 40)); time.sleep(0.25)\n"
       "print('done')"]


def tree(proc) -> list[psutil.Process]:
    """The worker and every process it started (its jobs, in their sandboxes)."""
    me = psutil.Process(proc.popen.pid)
    return [me, *me.children(recursive=True)]


def sleep(proc) -> None:
    for p in tree(proc):  # the worker first: it must not see its jobs stop
        try:
            p.send_signal(signal.SIGSTOP)
        except psutil.NoSuchProcess:
            pass


def wake(proc) -> None:
    for p in reversed(tree(proc)):  # its jobs first, then the worker
        try:
            p.send_signal(signal.SIGCONT)
        except psutil.NoSuchProcess:
            pass


def test_a_worker_asleep_for_ten_leases_keeps_its_replica_and_the_extra_is_cancelled(grid):
    grid.configure_scheduler(heartbeat_seconds=HEARTBEAT, lease_heartbeats=LEASE / HEARTBEAT)
    grid.start_coordinator()
    admin, alice = grid.client(), grid.client(grid.user("alice"))
    alice.register_app(name="nap", command=NAP, replication=1, quorum=1, deadline=6 * 3600)
    sleeper = grid.start_worker("sleeper", grid.user("vol1", "worker"))
    [jid] = alice.submit([{"app": "nap", "args": []}])
    [mine] = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "RUNNING"], 60,
                      "the job running on the sleeper")
    wait_for(lambda: (alice.job(jid)["progress"] or 0) > 0, 60, "the job's first step")
    sleep(sleeper)
    asleep_at = time.monotonic()
    spare = grid.start_worker("spare", grid.user("vol2", "worker"), "--log-level", "debug")
    hosts = wait_for(lambda: {h["name"]: h for h in admin.hosts()} if len(admin.hosts()) == 2 else None, 60,
                     "the spare host")
    assert hosts["sleeper"]["id"] == mine["host_id"]
    wait_for(lambda: not {h["name"]: h for h in admin.hosts()}["sleeper"]["alive"], 60, "the sleeper shown silent")
    assert "waiting on 1 silent host" in alice.job(jid)["why"]
    # After SILENT_LEASES leases silent (and one more: the spare has no record yet), an extra replica.
    [extra] = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["covers"] == mine["id"]
                                and r["status"] == "RUNNING"], 120, "an extra replica running on the spare")
    assert extra["host_id"] == hosts["spare"]["id"]
    sleep(spare)  # from now on neither replica may finish before the test says so
    job = alice.job(jid)
    assert "waiting on 1 silent host" in job["why"] and "1 extra replica started elsewhere" in job["why"], job["why"]
    r = subprocess.run([sys.executable, "-m", "xwpy", "--url", grid.url, "--token", alice.endpoint.token, "--ca",
                        str(grid.cfg.ca_cert), "status", str(jid)], capture_output=True, text=True, env=child_env(),
                       timeout=60)
    assert r.returncode == 0 and "waiting on 1 silent host" in r.stdout, r.stdout + r.stderr
    assert f"extra beside replica {mine['id']}" in r.stdout, r.stdout

    # A laptop asleep for ten leases (at least) wakes up: its job goes on where it was.
    wait_for(lambda: time.monotonic() - asleep_at >= 10 * LEASE, 60, "ten leases of sleep")
    assert alice.job(jid)["status"] == "RUNNING"
    wake(sleeper)
    wait_for(lambda: alice.job(jid)["status"] == "COMPLETED", 120, "the sleeper's job certified")
    replicas = {r["id"]: r for r in alice.job(jid)["replicas"]}
    assert replicas[mine["id"]]["status"] == "DONE" and replicas[mine["id"]]["validation"] == "VALID"
    assert replicas[extra["id"]]["status"] == "ABORTED" and replicas[extra["id"]]["error"] == "no longer needed"
    assert alice.job(jid)["result_sha256"] == replicas[mine["id"]]["result_sha256"]

    # The spare wakes up: it is told to abort its copy (or its late report is refused).
    wake(spare)
    wait_for(lambda: f"replica {extra['id']} aborted by the coordinator" in spare.output()
             or f"replica {extra['id']}: " in spare.output(), 60, "the spare told its replica is surplus")
    job = alice.job(jid)
    assert job["status"] == "COMPLETED" and {r["id"]: r["status"] for r in job["replicas"]} == {
        mine["id"]: "DONE", extra["id"]: "ABORTED"}
    assert admin.call("GET", "/stats")["certified"] == 1  # certified once, never again
    assert sleeper.alive() and spare.alive()
