"""A new user's first hour (issue 10), with real coordinator and worker processes: the README's
scientist section run word for word, jobs that cannot progress say why and end, failed jobs are
retried on a one-worker site, and uploading data again never narrows its access."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import wait_for
from xwpy.client.exits import Exit
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RANDOM = ["{python}", "-c", "import os; print(os.urandom(8).hex())", "{args}"]
FAILS = ["{python}", "-c", "import sys; print('boom: first line', file=sys.stderr); "
         "print('boom: last line', file=sys.stderr); sys.exit(3)", "{args}"]
PRIMES = ["{python}", "-c", "import sys; print(sys.argv[1])", "{args}"]


def xwpy_env(grid, token: str) -> dict[str, str]:
    env = child_env()
    env.update(XWPY_URL=grid.url, XWPY_CA=str(grid.cfg.ca_cert), XWPY_TOKEN=token,
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}")
    return env


def sh(line: str, env: dict, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def xwpy(grid, token: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "xwpy", *args], capture_output=True, text=True,
                       env=xwpy_env(grid, token), cwd=cwd, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def readme_session() -> list[str]:
    """The command lines of the README's scientist section, as written."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"A scientist \(.*?```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def readme_python() -> str:
    """The README's Python example (after the session, whose primes app it uses), as written."""
    text = (REPO / "README.md").read_text()
    return re.search(r"\*\*From Python\.\*\*.*?```python\n(.*?)```", text, re.S).group(1)


def volunteers(grid, n: int) -> None:
    for i in range(n):
        grid.start_worker(f"w{i}", grid.user(f"vol{i}", "worker"))
    wait_for(lambda: len(grid.client().hosts()) == n, 60, f"{n} hosts")


def test_the_readme_scientist_section_works_as_written(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.user("alice")
    volunteers(grid, 3)
    cwd = tmp_path / "alice"
    (cwd / "xwpy" / "apps").mkdir(parents=True)
    shutil.copytree(REPO / "xwpy" / "apps" / "primes", cwd / "xwpy" / "apps" / "primes")
    env = xwpy_env(grid, alice)
    out = {}
    for line in readme_session():
        r = sh(line, env, cwd)
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
        out[line.split("#")[0].strip()] = r
    assert out["xwpy submit primes 0 1000000"].stdout.strip() == "1"
    assert "status COMPLETED" in out["xwpy status 1 --watch"].stdout
    assert out["xwpy result 1"].stdout == "0 1000000 78498\n"
    assert not [p for p in os.listdir(cwd) if p.startswith(".xwpy")]  # result went through a temporary dir
    digest = hashlib.sha256((cwd / "input.bin").read_bytes()).hexdigest()
    assert out["xwpy data put input.bin"].stdout.strip() == digest
    assert "COMPLETED 1" in out["xwpy status --batch run1 --watch"].stdout
    # The batch's job ran on volunteers' hosts although its input is private (the default).
    [job] = grid.client(alice).jobs(batch="run1")
    assert job["status"] == "COMPLETED" and job["why"] == "" and not job["stalled"]
    detail = grid.client(alice).job(job["id"])
    assert len({r["host_id"] for r in detail["replicas"]}) == 3
    [data] = [d for d in grid.client(alice).data() if d["sha256"] == digest]
    assert data["access"] == "private"
    tar = tmp_path / "r.tar"
    grid.client(alice).result(job["id"], tar)
    from xwpy import archive

    assert archive.read_files(tar.read_bytes())["stdout"].decode() == f"{digest}  input.bin\n"
    # Other users may not read it; the admin sees alice's batch; --site works after the command.
    bob = grid.client(grid.user("bob"))
    with pytest.raises(Exception) as e:
        bob.get_data(digest, tmp_path / "stolen")
    assert getattr(e.value, "status", 0) == 404
    admin = json.loads(xwpy(grid, grid.admin_token, "status", "--batch", "run1", "--json", cwd=cwd).stdout)
    assert [j["id"] for j in admin] == [job["id"]]
    r = subprocess.run([sys.executable, "-m", "xwpy", "status", "1", "--site", str(grid.cfg.dir)],
                       capture_output=True, text=True, env=child_env(), cwd=cwd, timeout=120)
    assert r.returncode == 0 and "status COMPLETED" in r.stdout, r.stderr
    # The Python API's example, with the session's environment.
    r = subprocess.run([sys.executable, "-c", readme_python()], capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["b'0 1000 168\\n'", "0 100 25", "0 1000 168", "0 10000 1229"]
    # A usage mistake is one line and exit status 2.
    r = xwpy(grid, alice, "submit", "primes", "--replication", "-1", cwd=cwd)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("xwpy: error: ")


def test_replicas_that_cannot_agree_end_in_error_and_watch_returns(grid, tmp_path):
    grid.configure_scheduler(no_quorum_seconds=1.0)
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="random", command=RANDOM, replication=3, quorum=2)
    volunteers(grid, 3)  # all three alive before the job runs: no host left after them
    [jid] = alice.submit([{"app": "random", "args": []}])
    r = xwpy(grid, alice.endpoint.token, "status", str(jid), "--watch", cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    assert "status ERROR" in r.stdout and "no quorum possible: 3 results disagree (3 digests" in r.stdout
    job = alice.job(jid)
    assert [r["validation"] for r in job["replicas"]] == ["INVALID"] * 3


def test_a_failed_job_on_a_one_worker_site_is_retried_then_shows_its_stderr(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="fails", command=FAILS, replication=1, quorum=1)
    volunteers(grid, 1)
    [jid] = alice.submit([{"app": "fails", "args": [], "max_errors": 3}])
    r = xwpy(grid, alice.endpoint.token, "status", str(jid), "--watch", cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    job = alice.job(jid)
    assert [x["status"] for x in job["replicas"]] == ["FAILED"] * 3
    assert len({x["host_id"] for x in job["replicas"]}) == 1  # the only host, three times
    assert "3 replicas failed" in job["error"]
    shown = xwpy(grid, alice.endpoint.token, "status", str(jid), cwd=tmp_path).stdout
    assert "boom: first line" in shown and "boom: last line" in shown and "(exit 3)" in shown


def test_replication_three_on_a_one_worker_site_says_why_then_ends(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="echo", command=PRIMES, replication=3, quorum=2)
    volunteers(grid, 1)
    [jid] = alice.submit([{"app": "echo", "args": ["x"]}])
    job = wait_for(lambda: (lambda j: j if j["stalled"] else None)(alice.job(jid)), 120, "the job to stall")
    assert "waiting for 1 more distinct host" in job["why"] and "the only host alive has run it" in job["why"]
    assert "ends in ERROR in" in job["why"] or job["why"].endswith("has run it")  # counting down, or about to
    shown = xwpy(grid, alice.endpoint.token, "status", str(jid), cwd=tmp_path).stdout
    assert "stalled: waiting for 1 more distinct host" in shown
    listing = xwpy(grid, alice.endpoint.token, "status", cwd=tmp_path).stdout
    assert "waiting for 1 more distinct host" in listing
    # The site's rule ends it after no_quorum_seconds (5 minutes by default; here made short, and
    # the coordinator restarted to take it: it resumes the job where the catalog says).
    grid.coordinator.stop(signal.SIGTERM)
    grid.configure_scheduler(no_quorum_seconds=1.0)
    grid.start_coordinator()
    r = xwpy(grid, alice.endpoint.token, "status", str(jid), "--watch", cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    assert "no quorum possible: 1 agreeing result of 2 needed" in r.stdout


def test_uploading_again_does_not_narrow_access(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice", group="lab"))
    carol = grid.client(grid.user("carol", group="lab"))
    alice.register_app(name="echo", command=PRIMES, replication=1, quorum=1)
    volunteers(grid, 1)
    f = tmp_path / "shared.txt"
    f.write_bytes(b"for the lab\n")
    sha = xwpy(grid, alice.endpoint.token, "data", "put", str(f), "--access", "group", cwd=tmp_path).stdout.strip()
    carol.get_data(sha, tmp_path / "c1")
    # submit -i FILE uploads it again, privately by default: it stays shared with the group.
    r = xwpy(grid, alice.endpoint.token, "submit", "echo", "x", "-i", f"shared.txt={f}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [d] = [d for d in alice.data() if d["sha256"] == sha]
    assert d["access"] == "group"
    carol.get_data(sha, tmp_path / "c2")
    assert (tmp_path / "c2").read_bytes() == b"for the lab\n"
    grid.wait_final(alice, [int(r.stdout.strip())])


def test_a_batch_watch_says_why_its_jobs_wait(grid, tmp_path):
    """No worker at all: the job never runs (so it never ends by the no-quorum rule), and a
    batch watch that sees no progress says why, then gives up at its --timeout (exit 8, TIMED_OUT)."""
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="echo", command=PRIMES, replication=1, quorum=1)
    [jid] = alice.submit([{"app": "echo", "args": ["x"]}], batch="lonely")
    assert alice.job(jid)["why"] == "no host alive: no worker has registered with this site yet"
    r = xwpy(grid, alice.endpoint.token, "status", "--batch", "lonely", "--watch", "--timeout", "30", cwd=tmp_path)
    assert r.returncode == Exit.TIMED_OUT
    assert f"stalled: job {jid}: no host alive: no worker has registered with this site yet" in r.stderr
