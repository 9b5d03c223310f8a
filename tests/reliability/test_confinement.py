"""Confinement, with real worker processes: hostile jobs try to read another job's directory and the
worker's token, state and cache, fork-bomb, exhaust memory, write a huge file, flood their output,
burn CPU, outlive their time limit, and leave a daemon behind. Each is stopped, its job's error
names what stopped it, nothing leaks, no process of theirs survives them, and the worker goes on
serving jobs (on both of its slots) afterwards.

The tests run as root, so the worker runs each slot's jobs as an unprivileged uid of its own
(xwpy/worker/uids.py) under the limits of the job's app (protocol.Limits, set by the launcher), in
its bubblewrap sandbox (the default; tests/reliability/test_sandbox.py attacks the sandbox itself).
"""

from __future__ import annotations

import hashlib
import re
import time

import psutil
import pytest

from tests.grid.conftest import stdout_of
from tests.harness import wait_for
from tests.reliability.ledger import server_errors

pytestmark = pytest.mark.slow

# Each attack must meet its own limit first, however loaded the machine: a long wall-clock limit
# but for the job that is to meet that one.
LIMITS = {"wall_seconds": 60, "cpu_seconds": 2, "memory_bytes": 256 << 20, "output_bytes": 4 << 20, "processes": 16}
SLEEPER_WALL = 3
MiB = 1 << 20

# A job that tries to read each path given (a directory: to list it) and reports in its standard
# error; any token it finds in a process's command line is reported by a hash of it. If nothing
# could be read, it dies of the last refusal.
SNOOP = r"""
import hashlib, os, re, sys
denied = None
for path in sys.argv[1:]:
    try:
        got = os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(200)
        print("LEAK", path, got, file=sys.stderr)
    except OSError as e:
        print("denied", path, e.strerror, file=sys.stderr)
        denied = e
for pid in os.listdir("/proc"):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    for token in re.findall(rb"xw[uh]_[A-Za-z0-9_-]{43}", cmdline):
        print("TOKEN", hashlib.sha256(token).hexdigest()[:16], file=sys.stderr)
if denied:
    raise denied
"""

VICTIM = r"""
import time
open("secret.txt", "w").write("the victim's secret")
time.sleep(60)
"""

ATTACKS = {
    # name: (code, what the job's error must say)
    "forkbomb": ("import os\nwhile True:\n    os.fork()\n", "no more processes allowed (its limit: 16)"),
    "memory": ("x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
               f"out of memory within its limit of {LIMITS['memory_bytes']} bytes"),
    "bigfile": ("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * (1 << 20))\n",
                f"a file it wrote reached its output limit of {LIMITS['output_bytes']} bytes"),
    "flood": ("import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n",
              f"its standard output exceeded the limit of {LIMITS['output_bytes']} bytes"),
    "sleeper": ("import time\ntime.sleep(3600)\n", f"exceeded the wall-clock limit of {SLEEPER_WALL} s"),
    "spinner": ("while True:\n    pass\n", f"(its CPU time limit of {LIMITS['cpu_seconds']} s)"),
}

# Leaves a child in a session of its own, sleeping, and exits 0 at once.
DAEMON = r"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        time.sleep(300)
    os._exit(0)
os.wait()
print("left a daemon behind")
"""

# An honest job that needs to fork: it fails if the slot's uid has no processes left to give.
CANARY = ["{python}", "-c", "import subprocess, sys; n = int(sys.argv[1]); "
          "print(subprocess.run(['echo', str(n * n)], capture_output=True, text=True).stdout, end='')", "{args}"]


def job_uids(worker) -> list[int]:
    m = wait_for(lambda: re.search(r"jobs run as uids \[([0-9, ]+)\]", worker.output()), 30, "the worker's job uids")
    return [int(x) for x in m.group(1).split(",")]


def processes_of(uids) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real in uids]


def cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def test_hostile_jobs_are_stopped_and_the_worker_serves_on(grid, ledger, tmp_path):
    started = time.monotonic()
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    for name, (code, _) in ATTACKS.items():
        limits = {**LIMITS, "wall_seconds": SLEEPER_WALL} if name == "sleeper" else LIMITS
        alice.register_app(name=name, command=["{python}", "-c", code], replication=1, quorum=1, limits=limits)
    for name, code in (("snoop", SNOOP), ("daemon", DAEMON)):
        alice.register_app(name=name, command=["{python}", "-c", code, "{args}"], replication=1, quorum=1, limits=LIMITS)
    alice.register_app(name="victim", command=["{python}", "-c", VICTIM], replication=1, quorum=1,
                       limits={**LIMITS, "wall_seconds": 120})
    alice.register_app(name="canary", command=CANARY, replication=1, quorum=1, limits=LIMITS)
    state = grid.work_root / "w"
    # Started as a volunteer would, with the token on the command line: the worker must not keep it there.
    worker = grid.spawn("w", "worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert), "--token", vol,
                        "--state", str(state), "--name", "w", "--max-cpus", "2", "--wait", "2", "--no-idle-check")
    uids = job_uids(worker)
    input_sha = alice.put_bytes(b"an input the worker caches", name="in.txt", access="public")["sha256"]

    # (a) A job reads another job's directory, knowing its path.
    [victim] = alice.submit([{"app": "victim", "inputs": [{"name": "in.txt", "sha256": input_sha}]}])
    vrep = wait_for(lambda: [r for r in alice.job(victim)["replicas"] if r["status"] == "RUNNING"], 30, "the victim")[0]
    vdir = state / "jobs" / str(vrep["id"])
    wait_for(lambda: (vdir / "secret.txt").exists(), 30, "the victim's secret")
    vpid = wait_for(lambda: [p.pid for p in processes_of(uids) if "secret.txt" in cmdline(p)], 10, "its pid")[0]
    snoop_targets = [str(vdir / "secret.txt"), str(vdir), str(state / "jobs"), f"/proc/{vpid}/cwd", f"/proc/{vpid}/environ"]
    # (b) ...and the worker's token, state, cache and log, the coordinator's files, the worker's environment.
    steal_targets = [str(state / "host.json"), str(state / "cache"), str(state / "cache" / input_sha), str(state / "results"),
                     str(grid.root / "w.log"), str(grid.cfg.dir), str(grid.cfg.dir / "admin.token"),
                     f"/proc/{worker.popen.pid}/environ", f"/proc/{worker.popen.pid}/cwd"]
    [snoop, steal] = alice.submit([{"app": "snoop", "args": t, "max_errors": 1} for t in (snoop_targets, steal_targets)])
    grid.wait_final(alice, [snoop, steal], timeout=60)
    alice.cancel([victim])

    # (c)-(f) and a daemon left behind; then honest jobs, enough for both slots.
    attacks = dict(zip(ATTACKS, alice.submit([{"app": name, "max_errors": 1} for name in ATTACKS])))
    [daemon] = alice.submit([{"app": "daemon"}])
    jobs = grid.wait_final(alice, [victim, *attacks.values(), daemon], timeout=120)
    canaries = alice.submit([{"app": "canary", "args": [str(n)]} for n in range(4)])
    done = grid.wait_final(alice, canaries, timeout=60)
    deadline = time.monotonic() + 10  # (the last canary's processes are being reaped)
    while (leftovers := processes_of(uids)) and time.monotonic() < deadline:
        time.sleep(0.1)

    detail = {jid: alice.job(jid) for jid in [snoop, steal, *attacks.values(), daemon]}
    tails = {jid: " ".join((r["stderr_tail"] or "") + (r["error"] or "") for r in d["replicas"]) for jid, d in detail.items()}
    ours = {hashlib.sha256(t.encode()).hexdigest()[:16] for t in (vol, grid.admin_token, alice.endpoint.token)}
    leaks = [jid for jid in (snoop, steal) if "LEAK" in tails[jid] or ours & set(re.findall(r"TOKEN ([0-9a-f]{16})", tails[jid]))]
    not_stopped = [name for name, jid in attacks.items()
                   if jobs[jid]["status"] != "ERROR" or ATTACKS[name][1] not in (jobs[jid]["error"] or "")]
    canaries_ok = [n for n, jid in enumerate(canaries)
                   if done[jid]["status"] == "COMPLETED" and stdout_of(alice, jid, tmp_path) == f"{n * n}\n"]
    ledger.record(
        "Confinement: hostile jobs on a real worker (root, job uids)",
        load=f"{len(attacks) + 3} hostile jobs, then {len(canaries)} honest ones, 1 worker with 2 slots",
        faults="snooping, token theft, fork bomb, memory, huge file, output flood, CPU, sleep, daemon",
        bad_inputs=len(attacks) + 3, lost=len(canaries) - len(canaries_ok) + (not worker.alive()),
        wrong=len(leaks) + len(not_stopped) + len(leftovers), server_errors=server_errors(grid.coordinator.output()),
        seconds=time.monotonic() - started,
    )
    for jid in (snoop, steal):
        # Refused by file rights (--confinement uid), or not there at all (the sandbox's view).
        assert detail[jid]["status"] == "ERROR" and re.search("Permission denied|No such file", detail[jid]["error"]), detail[jid]
    assert not leaks, {jid: tails[jid][-1500:] for jid in leaks}
    assert vol not in " ".join(psutil.Process(worker.popen.pid).cmdline())  # the token left the command line
    assert vol not in worker.output()
    assert not leftovers, [p.pid for p in leftovers]
    assert not not_stopped, {name: jobs[attacks[name]]["error"] for name in not_stopped}
    assert jobs[daemon]["status"] == "COMPLETED" and jobs[victim]["status"] == "CANCELLED"
    assert worker.alive() and len(canaries_ok) == len(canaries)
    assert server_errors(grid.coordinator.output()) == 0
