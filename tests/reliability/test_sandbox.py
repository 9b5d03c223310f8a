"""The bubblewrap sandbox, with real worker processes and real bwrap: hostile jobs try to reach the
network (a port the test opened on 127.0.0.1, the coordinator, a name server), to read what is not
theirs (/etc/shadow, /root, the worker's state and token, another running job's directory), to
write outside their directory, to see and signal (or ptrace) other processes, to fill /tmp, to
fork-bomb and to exhaust memory. Every attempt is expected to fail, is asserted, and is recorded in
the reliability report's table. Also: three replicas of ``gzip -c`` on three workers agree (the
staging is deterministic), and a worker without bwrap refuses to start in one line.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from tests.grid.conftest import stdout_of
from xwpy import archive
from xwpy.client.api import ClientError
from tests.harness import wait_for
from tests.reliability.ledger import server_errors
from tests.reliability.test_confinement import cmdline, job_uids, processes_of
from xwpy.worker import bwrap
from xwpy.worker.runner import CODE_ROOT, SOURCE_DATE_EPOCH

pytestmark = pytest.mark.slow

LIMITS = {"wall_seconds": 120, "cpu_seconds": 20, "memory_bytes": 256 << 20, "output_bytes": 4 << 20, "processes": 16}
TMP_LIMITS = {**LIMITS, "memory_bytes": 64 << 20}  # its /tmp holds at most its memory: 64 MiB

# One hostile job: ATTACK TARGETS... Each attempt prints "blocked WHAT WHY" or "LEAK WHAT GOT".
HOSTILE = r"""
import ctypes, os, signal, socket, sys
attack, targets = sys.argv[1], sys.argv[2:]

def attempt(what, fn):
    try:
        got = fn()
    except OSError as e:
        print("blocked", what, type(e).__name__, e.strerror or e, flush=True)
        return
    print("LEAK", what, repr(got)[:300], flush=True)

def read(p):
    return os.listdir(p) if os.path.isdir(p) else open(p, "rb").read(100)

def write(p):
    with open(p, "w") as f:
        f.write("written from a job")
    return p

def connect(target):
    host, port = target.rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=20).close()
    return "connected"

libc = ctypes.CDLL(None, use_errno=True)

def ptrace(pid):
    if libc.ptrace(16, pid, 0, 0) != 0:  # PTRACE_ATTACH
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return "attached"

def fill():
    n = 0
    try:
        while True:  # files of 1 MiB (each under the job's file size limit)
            with open(f"/tmp/fill{n}", "wb") as f:
                f.write(b"x" * (1 << 20))
            n += 1
    finally:
        print("wrote", n, "MiB to /tmp", flush=True)

for t in targets:
    if attack == "connect":
        attempt(f"connect {t}", lambda: connect(t))
    elif attack == "resolve":
        attempt(f"resolve {t}", lambda: socket.getaddrinfo(t, 443))
    elif attack == "read":
        attempt(f"read {t}", lambda: read(t))
    elif attack == "write":
        attempt(f"write {t}", lambda: write(t))
    elif attack == "signal":
        attempt(f"kill {t}", lambda: os.kill(int(t), signal.SIGKILL) or "killed")
        attempt(f"ptrace {t}", lambda: ptrace(int(t)))
if attack == "listroot":
    print("root holds", sorted(os.listdir("/root")) if os.path.isdir("/root") else [], flush=True)
elif attack == "procs":
    seen = []
    for pid in sorted(os.listdir("/proc")):
        if pid.isdigit():
            try:
                seen.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:100])
            except OSError:
                pass
    print("processes", len(seen), seen, flush=True)
elif attack == "tmpfill":
    attempt("fill /tmp", fill)
"""

VICTIM = r"""
import time
open("secret.txt", "w").write("the victim's secret")
deadline = time.monotonic() + 100
while time.monotonic() < deadline:
    time.sleep(0.2)
"""

RESOURCE = {
    # name: (code, what the job's error must say)
    "forkbomb": ("import os\nwhile True:\n    os.fork()\n", f"no more processes allowed (its limit: {LIMITS['processes']})"),
    "memory": ("x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
               f"out of memory within its limit of {LIMITS['memory_bytes']} bytes"),
}


def result_stdout(client, job_id, tmp_path) -> bytes:
    dest = tmp_path / f"r{job_id}.tar"
    client.result(job_id, dest)
    return archive.read_files(dest.read_bytes())["stdout"]


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_hostile_jobs_cannot_leave_the_sandbox(grid, ledger, tmp_path):
    started = time.monotonic()
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="hostile", command=["{python}", "-c", HOSTILE, "{args}"], replication=1, quorum=1, limits=LIMITS)
    # An app that declares it needs the network, and a worker that does not allow networked apps.
    alice.register_app(name="netapp", command=["{python}", "-c", HOSTILE, "{args}"], replication=1, quorum=1,
                       limits=LIMITS, network=True)
    alice.register_app(name="tmpfill", command=["{python}", "-c", HOSTILE, "tmpfill"], replication=1, quorum=1,
                       limits=TMP_LIMITS)
    alice.register_app(name="victim", command=["{python}", "-c", VICTIM], replication=1, quorum=1, limits=LIMITS)
    for name, (code, _) in RESOURCE.items():
        alice.register_app(name=name, command=["{python}", "-c", code], replication=1, quorum=1, limits=LIMITS)
    assert alice.app("netapp")["network"] is True and alice.app("hostile")["network"] is False

    worker = grid.start_worker("w", vol, slots=3)
    uids = job_uids(worker)
    state = grid.work_root / "w"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    bystander = subprocess.Popen(["sleep", "600"])  # a process of this machine, for the job to signal

    try:
        [victim] = alice.submit([{"app": "victim"}])
        vrep = wait_for(lambda: [r for r in alice.job(victim)["replicas"] if r["status"] == "RUNNING"], 60, "the victim")[0]
        vdir = state / "jobs" / str(vrep["id"])
        wait_for(lambda: (vdir / "secret.txt").exists(), 60, "the victim's secret")
        vpid = wait_for(lambda: [p.pid for p in processes_of(uids) if "secret.txt" in cmdline(p)], 30, "its pid")[0]

        root_entries = sorted(f"/root/{n}" for n in os.listdir("/root"))
        bound_under_root = {p.split("/")[2] for p in bwrap.interpreter_paths() if p.startswith("/root/")}
        outside = [f"/{n}" for n in ("etc/evil", "usr/evil", "evil")] + [
            os.path.join(CODE_ROOT, "evil"), str(state / "evil"), str(tmp_path / "evil"), "/job/../evil"]
        attacks = {
            "connect to a port opened by the test on 127.0.0.1": ("hostile", ["connect", f"127.0.0.1:{listener.getsockname()[1]}"]),
            "connect to the coordinator": ("hostile", ["connect", f"127.0.0.1:{grid.port}", f"localhost:{grid.port}"]),
            "resolve a name": ("hostile", ["resolve", "deb.debian.org", "example.com"]),
            "read /etc/shadow and /etc/passwd": ("hostile", ["read", "/etc/shadow", "/etc/passwd", "/etc/sudoers", "/etc/ssh"]),
            "read /root, /home": ("hostile", ["read", *[e for e in root_entries if e.split("/")[2] not in bound_under_root],
                                              "/home", "/root/.bashrc", "/root/.profile", "/root/.gitconfig"]),
            "read the worker's state directory and token": ("hostile", ["read", str(state), str(state / "host.json"),
                                                                          str(state / "cache"), str(state / "jobs"),
                                                                          str(grid.cfg.dir), str(grid.cfg.dir / "admin.token")]),
            "read another running job's directory": ("hostile", ["read", str(vdir), str(vdir / "secret.txt"),
                                                                   f"/proc/{vpid}/cwd", f"/proc/{vpid}/environ"]),
            "write outside the job directory": ("hostile", ["write", *outside]),
            "signal and ptrace other processes": ("hostile", ["signal", str(bystander.pid), str(worker.popen.pid), str(vpid)]),
        }
        ids = dict(zip(attacks, alice.submit([{"app": app, "args": args, "max_errors": 1} for app, args in attacks.values()])))
        # An app that needs the network never goes to a worker that does not give it: refused here.
        with pytest.raises(ClientError, match="needs the network, which the host's volunteer does not give"):
            alice.submit([{"app": "netapp", "args": ["connect", f"127.0.0.1:{grid.port}", "1.1.1.1:53"]}])
        [listroot, procs, tmpfill] = alice.submit([{"app": "hostile", "args": ["listroot"]},
                                                   {"app": "hostile", "args": ["procs"]},
                                                   {"app": "tmpfill", "max_errors": 1}])
        resource = dict(zip(RESOURCE, alice.submit([{"app": name, "max_errors": 1} for name in RESOURCE])))
        jobs = grid.wait_final(alice, [*ids.values(), listroot, procs, tmpfill, *resource.values()], timeout=300)
        alice.cancel([victim])
        grid.wait_final(alice, [victim], timeout=60)
        try:
            accepted = listener.accept()[0]  # no job may have reached it
            accepted.close()
        except BlockingIOError:
            accepted = None
        bystander_alive = bystander.poll() is None
    finally:
        bystander.kill()
        listener.close()

    outputs = {name: stdout_of(alice, jid, tmp_path) if jobs[jid]["status"] == "COMPLETED" else "" for name, jid in ids.items()}
    verdicts = {}  # attempt -> None when blocked as expected, else what went wrong
    for name, jid in ids.items():
        out = outputs[name]
        n_targets = len(attacks[name][1]) - 1
        expected = 2 * n_targets if attacks[name][1][0] == "signal" else n_targets
        blocked = lines(out, "blocked ")
        verdicts[name] = (None if jobs[jid]["status"] == "COMPLETED" and not lines(out, "LEAK") and len(blocked) == expected
                          else f"{jobs[jid]['status']} {jobs[jid]['error']!r}: {out[-1500:]}")
    for name in ("connect to a port opened by the test on 127.0.0.1", "connect to the coordinator"):
        if verdicts[name] is None and accepted is not None:
            verdicts[name] = "the test's port accepted a connection"
    if not bystander_alive:
        verdicts["signal and ptrace other processes"] = "the bystander was killed"
    if not all("No such process" in line for line in lines(outputs["signal and ptrace other processes"], "blocked")):
        verdicts["signal and ptrace other processes"] = verdicts["signal and ptrace other processes"] or "not hidden by the pid namespace"
    written = [p for p in outside if os.path.exists(os.path.normpath(p))]
    if written:
        verdicts["write outside the job directory"] = f"written: {written}"

    root_out = stdout_of(alice, listroot, tmp_path) if jobs[listroot]["status"] == "COMPLETED" else ""
    m = re.search(r"root holds (\[.*\])", root_out)
    seen_in_root = set(eval(m.group(1))) if m else None  # noqa: S307 - a list of names printed by the job
    verdicts["list /root"] = (None if seen_in_root is not None and seen_in_root <= bound_under_root
                              else f"/root shows {seen_in_root} ({root_out[-300:]})")
    procs_out = stdout_of(alice, procs, tmp_path) if jobs[procs]["status"] == "COMPLETED" else ""
    m = re.search(r"processes (\d+) (\[.*\])", procs_out)
    seen = eval(m.group(2)) if m else None  # noqa: S307
    verdicts["see other processes in /proc"] = (
        None if seen is not None and len(seen) <= 3 and not any("xwpy worker" in c or "pytest" in c or "secret" in c
                                                                 or str(state) in c for c in seen)
        else f"/proc shows {seen} ({procs_out[-300:]})")
    tmp_out = stdout_of(alice, tmpfill, tmp_path) if jobs[tmpfill]["status"] == "COMPLETED" else ""
    m = re.search(r"wrote (\d+) MiB to /tmp", tmp_out)
    verdicts["fill /tmp beyond its limit"] = (
        None if m and int(m.group(1)) <= TMP_LIMITS["memory_bytes"] >> 20 and "No space left on device" in tmp_out
        else f"{jobs[tmpfill]['status']} {jobs[tmpfill]['error']!r}: {tmp_out[-500:]}")
    for name, jid in resource.items():
        verdicts[name] = (None if jobs[jid]["status"] == "ERROR" and RESOURCE[name][1] in (jobs[jid]["error"] or "")
                          else f"{jobs[jid]['status']} {jobs[jid]['error']!r}")

    deadline = time.monotonic() + 30  # (the last jobs' processes are being reaped)
    while (leftovers := processes_of(uids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    errors = server_errors(grid.coordinator.output())
    elapsed = time.monotonic() - started
    for name, verdict in verdicts.items():
        ledger.record(f"Sandbox: {name}", load="1 worker (root, bwrap, 3 slots), a victim job running",
                      faults="hostile job", bad_inputs=1, wrong=int(verdict is not None), server_errors=0,
                      seconds=elapsed / len(verdicts))
    ledger.record("Sandbox: no process of a hostile job survives it; the worker serves on",
                  load=f"{len(verdicts)} hostile jobs", lost=int(not worker.alive()), wrong=len(leftovers),
                  server_errors=errors)
    for name, out in [*outputs.items(), ("list /root", root_out), ("/proc", procs_out), ("/tmp", tmp_out)]:
        print(f"--- {name}\n{out}")  # shown when the test fails (or with -s)
    failed = {name: v for name, v in verdicts.items() if v is not None}
    assert not failed, failed
    assert not leftovers and worker.alive() and errors == 0


def test_three_replicas_of_gzip_agree(grid, ledger, tmp_path):
    """Issue 10 item 3: gzip -c stores its input's mtime (and name): staged inputs get a fixed
    mtime, so honest replicas on three hosts produce the same bytes, and the job is certified."""
    started = time.monotonic()
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="gzip", command=["gzip", "-c", "in.txt"], replication=3, quorum=3)
    alice.register_app(name="env", command=["sh", "-c", "echo $TZ $LANG $LC_ALL $SOURCE_DATE_EPOCH $HOME; pwd; hostname; id -u; "
                                            "date -r in.txt +%s"], replication=3, quorum=3)
    data = b"the same input for every replica\n" * 1000
    sha = alice.put_bytes(data, name="in.txt", access="public")["sha256"]
    for name in ("a", "b", "c"):
        grid.start_worker(name, vol)
    ids = alice.submit([{"app": app, "inputs": [{"name": "in.txt", "sha256": sha}]} for app in ("gzip", "gzip", "env")])
    jobs = grid.wait_final(alice, ids, timeout=180)
    local = tmp_path / "in.txt"
    local.write_bytes(data)
    os.utime(local, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    expected = subprocess.run(["gzip", "-c", str(local.name)], cwd=tmp_path, capture_output=True, check=True).stdout
    results = [result_stdout(alice, jid, tmp_path) if jobs[jid]["status"] == "COMPLETED" else b"" for jid in ids[:2]]
    digests = {jid: {r["result_sha256"] for r in alice.job(jid)["replicas"]} for jid in ids}
    ok = [jid for jid in ids if jobs[jid]["status"] == "COMPLETED" and len(digests[jid]) == 1
          and len(alice.job(jid)["replicas"]) == 3]
    ledger.record("Determinism: 3 replicas of gzip -c on 3 hosts agree", load="3 jobs r3 q3, 3 workers",
                  lost=len(ids) - len(ok), server_errors=server_errors(grid.coordinator.output()),
                  seconds=time.monotonic() - started)
    assert len(ok) == len(ids), {jid: (jobs[jid]["status"], digests[jid]) for jid in ids}
    env = stdout_of(alice, ids[2], tmp_path).split("\n")
    assert env[:5] == [f"UTC C.UTF-8 C.UTF-8 {SOURCE_DATE_EPOCH} /job", "/job", bwrap.HOSTNAME, str(bwrap.JOB_UID),
                       str(SOURCE_DATE_EPOCH)], env
    for got in results:
        assert gzip.decompress(got) == data
        assert got == expected


def test_a_worker_without_bwrap_refuses_to_start_in_one_line(grid, ledger):
    started = time.monotonic()
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    no_bwrap = "/nonexistent"  # no bwrap on PATH (the worker's Python is started by its full path)
    w = grid.spawn("nobwrap", "worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert), "--state",
                   str(grid.work_root / "nobwrap"), "--no-idle-check", env={"XWPY_TOKEN": vol, "PATH": no_bwrap})
    code = w.popen.wait(timeout=120)
    out = [line for line in w.output().splitlines() if line.strip()]
    # Chosen explicitly, --confinement uid runs (and says, at every start, that it does not sandbox).
    u = grid.spawn("uid", "worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert), "--state",
                   str(grid.work_root / "uid"), "--no-idle-check", "--confinement", "uid",
                   env={"XWPY_TOKEN": vol, "PATH": no_bwrap})
    wait_for(lambda: "jobs run with --confinement uid: no sandbox" in u.output(), 60, "the uid-confined worker's warning")
    ledger.record("A worker without bwrap refuses to start (one line), unless --confinement uid",
                  bad_inputs=1, wrong=int(code == 0 or len(out) != 1), seconds=time.monotonic() - started)
    assert code != 0 and len(out) == 1 and "apt install bubblewrap" in out[0], out
    assert u.alive() or "no sandbox" in u.output()


def test_check_says_what_this_machine_supports():
    r = subprocess.run([sys.executable, "-m", "xwpy", "worker", "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "bwrap: supported" in r.stdout, r
    r = subprocess.run([sys.executable, "-m", "xwpy", "worker", "--check"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PATH": "/nonexistent"})
    assert r.returncode == 1 and "bwrap: NOT supported" in r.stdout and "apt install bubblewrap" in r.stdout, r


def test_a_job_reaches_the_interpreter_under_a_home_its_uid_cannot_traverse(tmp_path):
    """The launcher (root) binds what a job needs from under a 0700 directory through a private
    mount namespace; the job reads it, nothing else of that directory, and nothing changes on the host."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a worker that confines jobs to uids)")
    import json

    home = tmp_path / "home"
    (home / "venv").mkdir(parents=True)
    (home / "venv" / "lib.py").write_text("VALUE = 42\n")
    (home / ".bashrc").write_text("a secret of the home's owner\n")
    os.chmod(home, 0o700)
    os.chmod(tmp_path, 0o711)
    job = tmp_path / "job"
    job.mkdir()
    os.chown(job, 61999, 61999)
    layout = bwrap.host_layout()
    script = (f"import sys; sys.path.insert(0, {str(home / 'venv')!r}); import lib; print(lib.VALUE); "
              f"import os; print(os.listdir({str(home)!r})); open({str(home / '.bashrc')!r})")
    binds = [str(home / "venv"), *bwrap.interpreter_paths()]
    argv = bwrap.build(bwrap.Spec(workdir=str(job), argv=(sys.executable, "-c", script), layout=layout, ro_binds=tuple(binds)))
    spec = {"argv": [], "cwd": str(job), "uid": 61999, "gid": 61999, "cpu": 60, "memory": 1 << 30, "fsize": 1 << 20,
            "nproc": 32, "bwrap": {"argv": argv, "reach": [str(job), *binds]}}
    r = subprocess.run([sys.executable, "-m", "xwpy.worker.sandbox", json.dumps(spec)], capture_output=True, text=True,
                       timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": CODE_ROOT})
    assert r.stdout.splitlines() == ["42", "['venv']"], r
    assert "No such file or directory" in r.stderr and r.returncode == 1, r
    assert oct(os.stat(home).st_mode & 0o777) == "0o700"
    assert not any(str(home) in line for line in open("/proc/self/mountinfo"))


def test_a_networked_app_reaches_the_network_but_not_the_hosts_loopback(grid, ledger, tmp_path):
    """An app that declares it needs the network, on a worker that allows it (--allow-network):
    slirp4netns connects its namespace to the outside world, without the host's loopback."""
    started = time.monotonic()
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="net", command=["{python}", "-c", HOSTILE, "{args}"], replication=1, quorum=1,
                       limits=LIMITS, network=True)
    loopback = socket.socket()
    loopback.bind(("127.0.0.1", 0))
    loopback.listen(8)
    loopback.setblocking(False)
    # This machine's address on its network, if it has one: a networked job may reach it, as any other host.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("203.0.113.1", 9))  # (UDP: nothing is sent; only the route is looked up)
        address = probe.getsockname()[0]
    except OSError:
        address = None
    probe.close()
    outside = None
    if address and not address.startswith("127."):
        outside = socket.socket()
        outside.bind((address, 0))
        outside.listen(8)
    grid.start_worker("w", vol, "--allow-network")
    lport = loopback.getsockname()[1]
    try:
        [blocked] = alice.submit([{"app": "net", "args": ["connect", f"127.0.0.1:{lport}", f"127.0.0.1:{grid.port}",
                                                          f"10.0.2.2:{lport}", f"10.0.2.2:{grid.port}"], "max_errors": 1}])
        jobs = [blocked]
        if outside is not None:
            [reached] = alice.submit([{"app": "net", "args": ["connect", f"{address}:{outside.getsockname()[1]}"]}])
            jobs.append(reached)
        final = grid.wait_final(alice, jobs, timeout=120)
        out = stdout_of(alice, blocked, tmp_path) if final[blocked]["status"] == "COMPLETED" else ""
        reached_out = stdout_of(alice, jobs[1], tmp_path) if outside is not None else ""
        try:
            loopback.accept()[0].close()
            loopback_reached = True
        except BlockingIOError:
            loopback_reached = False
    finally:
        loopback.close()
        if outside is not None:
            outside.close()
    print(out, reached_out)
    ok = len(lines(out, "blocked ")) == 4 and not lines(out, "LEAK") and not loopback_reached
    ledger.record("Sandbox: a networked job (--allow-network) reaches neither the host's loopback nor the coordinator",
                  load="1 worker (root, bwrap, slirp4netns)", faults="hostile job", bad_inputs=1, wrong=int(not ok),
                  server_errors=server_errors(grid.coordinator.output()), seconds=time.monotonic() - started)
    assert ok, (final, out)
    if outside is not None:
        assert lines(reached_out, "LEAK connect"), reached_out  # "LEAK" here: the connection the app needs
