"""A volunteer's worker steps aside while the machine's owner needs it, and comes back after."""

from __future__ import annotations

import uuid

import psutil
import pytest

from tests.harness import wait_for
from xwpy.worker.idle import LOAD_FILE_ENV

pytestmark = pytest.mark.slow

# Unique to this run: other runs on the machine (other checkouts) have jobs of this test too.
MARK = f"xwpy-idle-test-job-{uuid.uuid4().hex[:12]}"
# Needs 3 s of CPU: a suspended job makes no progress, whatever the clock says.
BUSY = ["{python}", "-c", f"import time  # {MARK}\nwhile time.process_time() < 3: pass\nprint('done')"]


def job_process():
    for p in psutil.process_iter(["cmdline"]):
        if any(MARK in part for part in (p.info["cmdline"] or [])):
            return p
    return None


def test_jobs_are_suspended_while_the_owner_is_busy_and_resumed_after(grid, tmp_path):
    # The owner's load comes from a file the test writes (idle.LOAD_FILE_ENV), not from the
    # machine, whose other tenants would decide when the job may resume; how the load is measured
    # is test_idle.py's. Everything the worker does with it is real: SIGSTOP, heartbeats, SIGCONT.
    owner = tmp_path / "owner-load"
    owner.write_text("0.0")
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="busy", command=BUSY, replication=1, quorum=1)
    worker = grid.start_worker("desktop", grid.user("vol", "worker"), "--idle-threshold", "0.3",
                               "--idle-period", "0.2", idle_check=True, env={LOAD_FILE_ENV: str(owner)})
    [jid] = alice.submit([{"app": "busy"}])
    proc = wait_for(job_process, 30, "the job to start")
    owner.write_text("0.9")  # the owner starts working
    wait_for(lambda: proc.status() == psutil.STATUS_STOPPED, 20, "the job to be suspended")
    assert alice.job(jid)["status"] == "RUNNING"
    cpu_while_suspended = proc.cpu_times().user
    wait_for(lambda: "suspending jobs" in worker.output(), 5, "the worker to say why")
    # Its heartbeats say why, and the site shows it ("xwpy hosts").
    why = wait_for(lambda: grid.client().hosts()[0]["suspended"], 20, "the host shown suspended", interval=0.5)
    assert why == "owner load 90% above 30%", why  # the idle policy's reason, as it is now
    assert 'xwpy_hosts{state="suspended"} 1.0' in grid.client().metrics()  # what Prometheus sees
    assert proc.status() == psutil.STATUS_STOPPED and proc.cpu_times().user == cpu_while_suspended
    owner.write_text("0.1")  # calm again: resumed after the calm samples
    wait_for(lambda: proc.status() != psutil.STATUS_STOPPED, 60, "the job to be resumed", interval=0.2)
    wait_for(lambda: grid.client().hosts()[0]["suspended"] == "", 20, "the host shown computing again", interval=0.5)
    job = grid.wait_final(alice, [jid], timeout=60)[jid]
    assert job["status"] == "COMPLETED"
    assert cpu_while_suspended < 3
    assert "resuming jobs" in worker.output()
