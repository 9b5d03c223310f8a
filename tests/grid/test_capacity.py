"""Cores, memory and platforms end to end: a worker lends part of its machine, the coordinator
packs its jobs within it, the worker pins each job to its cores; a job no host could run is
refused at submission with the reason."""

from __future__ import annotations

import pytest

from tests.harness import wait_for
from xwpy.client.api import ClientError

pytestmark = pytest.mark.slow

GiB = 1 << 30


@pytest.fixture
def lent_grid(grid):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    grid.start_worker("w", grid.user("vol", "worker"), "--memory", "2G", "--cores", "2", slots=3)
    wait_for(lambda: len(grid.client().hosts()) == 1, 60, "the worker")
    return grid, alice


def test_jobs_are_packed_within_what_the_volunteer_lends_and_pinned(lent_grid):
    grid, alice = lent_grid
    # 1.5 GiB each on a 2 GiB offer: one at a time, although the worker has 3 slots.
    alice.register_app(name="big", command=["/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status; echo $0", "{args}"],
                       replication=1, quorum=1, limits={"memory_bytes": 3 * GiB // 2, "cores": 1})
    ids = alice.submit([{"app": "big", "args": [str(i)]} for i in range(4)])
    grid.wait_final(alice, ids, timeout=120)
    spans = []
    for jid in ids:
        job = alice.job(jid)
        assert job["status"] == "COMPLETED", job
        [r] = [r for r in job["replicas"] if r["validation"] == "VALID"]
        spans.append((r["assigned_at"], r["finished_at"]))
        from tests.grid.test_image_apps import stdout_of
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            allowed = stdout_of(alice, jid, Path(tmp)).splitlines()[0].split(":")[1].strip()
        assert allowed.isdigit(), allowed  # pinned to one core
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, spans  # never two at once


def test_a_job_no_host_could_run_is_refused_with_the_reason(lent_grid):
    grid, alice = lent_grid
    alice.register_app(name="huge", command=["true"], replication=1, quorum=1, limits={"memory_bytes": 4 * GiB})
    alice.register_app(name="wide", command=["true"], replication=1, quorum=1, limits={"cores": 3})
    bundle = alice.put_bytes(b"x", name="b")["sha256"]
    alice.register_app(name="mac", command=["true"], replication=1, quorum=1, bundle=None, platform="darwin-arm64")
    assert bundle
    for app, why in (("huge", "needs 4096 MiB of memory, the host offers 2048 MiB"),
                     ("wide", "needs 3 cores, the host offers 2"),
                     ("mac", "no version for it (linux-")):
        with pytest.raises(ClientError) as e:
            alice.submit([{"app": app, "args": []}])
        assert why in str(e.value) and "jobs[0]" in str(e.value), str(e.value)
    assert list(alice.jobs()) == []
