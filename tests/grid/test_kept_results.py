"""A finished result outlives an absent coordinator and a restarted worker (issue 12 item 5), with
real processes: the job finishes while the coordinator is stopped; the worker keeps the result in
its state directory, is stopped (SIGTERM) or killed (SIGKILL) and started again, still without a
coordinator; then the coordinator comes back, and the same replica's result is reported and its
job certified, once. Leases are long (minutes): nothing here may be lost to a slow restart."""

from __future__ import annotations

import hashlib
import signal

import pytest

from tests.harness import wait_for
from xwpy import archive

pytestmark = pytest.mark.slow

# Waits for the test's "go" (a file the test puts in its directory), then writes a result too big
# to travel inline: the worker uploads it before reporting.
WAIT_THEN_WRITE = ["{python}", "-c", """
import hashlib, os, sys, time
while not os.path.exists("go"):
    time.sleep(0.05)
os.remove("go")
block = hashlib.sha256(sys.argv[1].encode()).digest() * 32768  # 1 MiB
open("big.bin", "wb").write(block)
print("done", sys.argv[1])
""", "{args}"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_result_finished_while_the_coordinator_is_away_is_kept_across_a_worker_restart(grid, tmp_path, stop):
    grid.configure_scheduler(lease_heartbeats=300)  # 5 minutes: only the deadline (a day) matters here
    coord = grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="late", command=WAIT_THEN_WRITE, replication=1, quorum=1)
    vol = grid.user("vol", "worker")
    w = grid.start_worker("w", vol)
    [jid] = alice.submit([{"app": "late", "args": ["x"]}])
    [mine] = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "RUNNING"], 60, "the job running")
    rid = mine["id"]
    state = grid.work_root / "w"
    workdir = state / "jobs" / str(rid)
    assert workdir.is_dir()

    coord.stop(signal.SIGTERM)
    (workdir / "go").write_text("")  # the job finishes now, with nobody to tell
    record, kept = state / "results" / f"{rid}.json", state / "results" / f"{rid}.tar"
    wait_for(lambda: f"could not report replica {rid}" in w.output(), 90, "the worker failing to report")
    assert record.exists() and kept.exists() and not workdir.exists()  # the result, not the job, is kept
    assert "its result is kept" in w.output()

    w.stop(stop)
    assert record.exists() and kept.exists()  # a stop or a kill leaves it on disk
    w = grid.start_worker("w", vol)
    wait_for(lambda: "found 1 finished results not yet reported" in w.output(), 60, "the worker finding its result")
    wait_for(lambda: "coordinator unreachable" in w.output(), 60, "the worker trying to connect")
    assert record.exists() and kept.exists()

    grid.start_coordinator()
    job = grid.wait_final(alice, [jid], timeout=180)[jid]
    assert job["status"] == "COMPLETED"
    replicas = alice.job(jid)["replicas"]
    assert [(r["id"], r["status"], r["validation"]) for r in replicas] == [(rid, "DONE", "VALID")]  # once
    dest = tmp_path / "result.tar"
    alice.result(jid, dest)
    files = archive.read_files(dest.read_bytes())
    assert files["stdout"] == b"done x\n"
    assert files["big.bin"] == hashlib.sha256(b"x").digest() * 32768
    wait_for(lambda: not record.exists() and not kept.exists(), 60, "the worker forgetting the reported result")
    assert w.alive() and "result dropped" not in w.output()
