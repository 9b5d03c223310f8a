"""Checkpoints (issue 12 item 2), with real processes: a job that counts to N, checkpointing every K
steps (xwpy.checkpoint), resumes from its checkpoint when its worker is SIGKILLed and restarted —
or, for an app that uploads its checkpoints, when its replica moves to another worker. The work
redone is read from the job's own log of the steps it ran: at most one checkpoint interval."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest

from tests.harness import wait_for
from xwpy import archive
from xwpy.localgrid import child_env
from xwpy.worker.daemon import pack_checkpoint

pytestmark = pytest.mark.slow

N, K = 200, 20
# Logs every step it runs (steps.log, part of its result) and where each run started from.
COUNT = ["{python}", "-c", """
import sys, time
from xwpy import checkpoint
n, k = int(sys.argv[1]), int(sys.argv[2])
state = checkpoint.load(default={"i": 0, "total": 0})
log = open("steps.log", "a")
log.write(f"start {state['i']}\\n"); log.flush()
while state["i"] < n:
    state["i"] += 1
    state["total"] += state["i"]
    log.write(f"{state['i']}\\n"); log.flush()
    open("progress", "w").write(str(state["i"] / n))
    time.sleep(0.1)
    if state["i"] % k == 0:
        checkpoint.save(state)
print(state["total"])
""", "{args}"]


def runs(log: str) -> list[tuple[int, list[int]]]:
    """The job's runs, as (the step it started from, the steps it ran)."""
    out: list[tuple[int, list[int]]] = []
    for line in log.splitlines():
        if line.startswith("start "):
            out.append((int(line.split()[1]), []))
        else:
            out[-1][1].append(int(line))
    return out


def result_files(client, jid, tmp_path) -> dict[str, bytes]:
    dest = tmp_path / f"{jid}.tar"
    client.result(jid, dest)
    return archive.read_files(dest.read_bytes())


def tree(proc) -> list[psutil.Process]:
    me = psutil.Process(proc.popen.pid)
    return [me, *me.children(recursive=True)]


def send(procs: list[psutil.Process], sig: int) -> None:
    for p in procs:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:  # (a job dies with its worker: killing the one may end the other)
            pass


def job_dir(grid, worker: str, rid: int):
    return grid.work_root / worker / "jobs" / str(rid)


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped (a reboot)"])
def test_a_job_resumes_from_its_checkpoint_after_its_worker_is_killed_and_restarted(grid, tmp_path, stop):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="count", command=COUNT, replication=1, quorum=1)
    vol = grid.user("vol", "worker")
    w = grid.start_worker("w", vol)
    [jid] = alice.submit([{"app": "count", "args": [str(N), str(K)]}])
    [mine] = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "RUNNING"], 60, "the job running")
    wait_for(lambda: (alice.job(jid)["progress"] or 0) >= 0.25, 60, "a quarter of the job done")
    w.stop(stop)  # SIGTERM: the worker kills its job, keeps its directory (it has a checkpoint)
    assert (job_dir(grid, "w", mine["id"]) / "checkpoint" / "state.json").exists()  # kept on disk
    w = grid.start_worker("w", vol)
    wait_for(lambda: "resuming replica" in w.output(), 60, "the restarted worker resuming its replica")
    job = grid.wait_final(alice, [jid], timeout=120)[jid]
    assert job["status"] == "COMPLETED"
    assert [(r["id"], r["status"]) for r in alice.job(jid)["replicas"]] == [(mine["id"], "DONE")]  # the same replica
    files = result_files(alice, jid, tmp_path)
    assert files["stdout"] == f"{N * (N + 1) // 2}\n".encode()
    assert not any(name.startswith("checkpoint") for name in files)  # a checkpoint is no result
    (first, before), (resumed, after) = runs(files["steps.log"].decode())
    assert first == 0 and 0 < resumed and after == list(range(resumed + 1, N + 1))
    redone = before[-1] - resumed
    assert 0 <= redone <= K, (before[-1], resumed)


def test_a_replica_moved_to_another_worker_resumes_there_from_its_uploaded_checkpoint(grid, tmp_path):
    grid.configure_scheduler(heartbeat_seconds=0.5, lease_heartbeats=4.0)
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="count", command=COUNT, replication=1, quorum=1, checkpoints="upload")
    first = grid.start_worker("first", grid.user("vol1", "worker"))
    [jid] = alice.submit([{"app": "count", "args": [str(N), str(K)]}])
    [mine] = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["status"] == "RUNNING"], 60, "the job running")
    wait_for(lambda: (alice.job(jid)["progress"] or 0) >= 0.25, 60, "a quarter of the job done")
    # Freeze the job (not its worker), and wait for the coordinator to hold its latest checkpoint.
    send(tree(first)[1:], signal.SIGSTOP)
    work = job_dir(grid, "first", mine["id"])
    _, latest = pack_checkpoint(work, tmp_path / "latest.tar", (), 1 << 30)
    wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["checkpoint"] == latest], 60,
             "the latest checkpoint uploaded")
    ran = [int(s) for s in (work / "steps.log").read_text().split("\n") if s.isdigit()]
    send(tree(first), signal.SIGKILL)  # the machine is gone for good
    second = grid.start_worker("second", grid.user("vol2", "worker"))
    job = grid.wait_final(alice, [jid], timeout=120)[jid]
    assert job["status"] == "COMPLETED"
    replicas = {r["id"]: r for r in alice.job(jid)["replicas"]}
    [moved] = [r for r in replicas.values() if r["id"] != mine["id"]]
    assert (moved["covers"], moved["resume"], moved["status"]) == (mine["id"], latest, "DONE")
    assert replicas[mine["id"]]["status"] == "ABORTED"  # the first host's copy: surplus
    files = result_files(alice, jid, tmp_path)
    assert files["stdout"] == f"{N * (N + 1) // 2}\n".encode()
    [(resumed, after)] = runs(files["steps.log"].decode())  # its log starts on the second host
    assert after == list(range(resumed + 1, N + 1))
    redone = ran[-1] - resumed
    assert 0 <= redone <= K, (ran[-1], resumed)
    r = subprocess.run([sys.executable, "-m", "xwpy", "--url", grid.url, "--token", alice.endpoint.token, "--ca",
                        str(grid.cfg.ca_cert), "app", "list", "--json"], capture_output=True, text=True,
                       env=child_env(), timeout=60)
    assert r.returncode == 0 and '"checkpoints": "upload"' in r.stdout, r.stdout + r.stderr
    assert second.alive()
