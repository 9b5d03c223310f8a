"""Shares, priorities, quotas, cleanup (issue 16 item 5) on a real coordinator and worker: a site
with [shares] starts, and a job submitted with --priority runs before the same user's older jobs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def xwpy(grid, token, *args, check=True):
    cmd = [sys.executable, "-m", "xwpy", "--url", grid.url, "--token", token, "--ca", str(grid.cfg.ca_cert), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=120, cwd=REPO)
    assert "Traceback" not in r.stderr, r.stderr
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_a_job_with_a_higher_priority_runs_first(grid):
    grid.configure("shares", alice=3, bob=1)
    grid.start_coordinator()
    alice = grid.user("alice")
    xwpy(grid, alice, "app", "register", "primes", "--bundle", "xwpy/apps/primes", "--replication", "1",
         "--quorum", "1", "--", "{python}", "primes.py", "{args}")
    older = [int(xwpy(grid, alice, "submit", "primes", "--", "0", str(n)).stdout) for n in (10, 20, 30)]
    [urgent] = [int(xwpy(grid, alice, "submit", "primes", "--priority", "10", "--", "0", "1000").stdout)]
    assert json.loads(xwpy(grid, alice, "status", str(urgent), "--json").stdout)["priority"] == 10
    grid.start_worker("w", grid.user("vol", "worker"), slots=1)  # one slot: the jobs run one by one
    client = grid.client(alice)
    jobs = grid.wait_final(client, [*older, urgent], timeout=120)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    started = {jid: client.job(jid)["replicas"][0]["assigned_at"] for jid in jobs}
    assert min(started, key=started.get) == urgent
    assert sorted(older, key=started.get) == older  # then the oldest first
