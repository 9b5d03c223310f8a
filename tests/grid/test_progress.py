"""A job's progress file reaches its owner: heartbeats carry it, the API and `xwpy status` show it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import wait_for
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow

# Writes its progress, then waits for the test to cancel it (the wait is the job's work).
HALFWAY = ["/bin/sh", "-c", "echo 0.5 > progress; echo started; exec sleep 600"]


def test_a_jobs_progress_is_shown_while_it_runs(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="halfway", command=HALFWAY, replication=1, quorum=1)
    grid.start_worker("w", grid.user("vol", "worker"))
    [jid] = alice.submit([{"app": "halfway", "args": []}])
    assert wait_for(lambda: alice.job(jid)["progress"] == 0.5, 60, "the job's progress")
    [listed] = [j for j in alice.jobs() if j["id"] == jid]
    assert listed["progress"] == 0.5
    r = subprocess.run([sys.executable, "-m", "xwpy", "--url", grid.url, "--token", alice.endpoint.token, "--ca",
                        str(grid.cfg.ca_cert), "status", str(jid)], capture_output=True, text=True, env=child_env(),
                       timeout=60)
    assert r.returncode == 0 and "progress 50%" in r.stdout, r.stdout + r.stderr
    alice.cancel([jid])
    wait_for(lambda: alice.job(jid)["status"] == "CANCELLED", 60, "the job cancelled")
    assert alice.job(jid)["progress"] is None  # final: no running replica
