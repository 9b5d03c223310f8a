"""Shares, priorities, quotas, cleanup (issue 16 item 5) on a real coordinator: a site with
[shares] starts, and a job submitted with --priority runs before the same user's older jobs (a
real worker); quotas refuse in one line, per user; deleted jobs and data take their blobs with them
and are never served again; a blob a live job still uses is never collected."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import wait_for
from xwpy import archive
from xwpy.client.api import ClientError
from xwpy.client.exits import Exit
from xwpy.localgrid import child_env
from xwpy.protocol import API_PREFIX

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def xwpy(grid, token, *args, check=True):
    cmd = [sys.executable, "-m", "xwpy", "--url", grid.url, "--token", token, "--ca", str(grid.cfg.ca_cert), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=120, cwd=REPO)
    assert "Traceback" not in r.stderr, r.stderr
    if check:
        assert r.returncode == 0, r.stderr
    return r


def raw_status(grid, token: str, path: str) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", grid.port, timeout=30,
                                       context=ssl.create_default_context(cafile=str(grid.cfg.ca_cert)))
    try:
        conn.request("GET", API_PREFIX + path, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


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


# -- quotas, deletion, retention -------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_file(grid, digest: str) -> Path:
    return grid.cfg.blobs / digest[:2] / digest[2:4] / digest


def certify(alice, host, result: bytes, *, inline: bool) -> int:
    """A job of alice's certified with ``result`` by a host acting by hand (inline, or uploaded first)."""
    [job] = alice.submit([{"app": "square", "args": ["1"]}])
    [a] = host.call("POST", "/work/request", {"slots": 1, "wait": 10})["replicas"]
    assert a["job_id"] == job
    report = {"replica_id": a["replica_id"], "exit_code": 0, "result_sha256": sha(result)}
    if inline:
        report["inline"] = base64.b64encode(result).decode()
    else:
        host.put_bytes(result)
    assert host.call("POST", "/work/results", {"results": [report]})["outcome"] == {str(a["replica_id"]): "accepted"}
    return job


def refused_in_one_line(r, *words: str) -> None:
    assert r.returncode == Exit.REFUSED and r.stderr.startswith("xwpy: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert all(w in r.stderr for w in words), r.stderr


def test_quotas_deletion_and_retention_respect_owners_and_references(grid, tmp_path):
    grid.configure("limits", max_jobs_per_user=3, max_stored_bytes_per_user=1000)
    grid.configure("retention", gc_seconds=1.0, grace_seconds=60.0)
    grid.start_coordinator()
    admin = grid.client()
    tokens = {u: grid.user(u) for u in ("alice", "bob", "carol")}
    alice, bob, carol = (grid.client(tokens[u]) for u in ("alice", "bob", "carol"))
    alice.register_app(name="square", command=["{python}", "-c", "print(1)", "{args}"], replication=1, quorum=1,
                       access="public")
    vol = grid.client(grid.user("vol", "worker"))
    host = grid.client(vol.call("POST", "/work/register", {"name": "h", "cpus": 1, "memory": 1 << 34})["token"])
    host.call("POST", "/work/hello", {})

    # Certified results, one in a file and one in the catalog: deleted with their jobs, never served again.
    big = archive.from_files({"stdout": os.urandom(100_000)})
    small = archive.from_files({"stdout": b"1\n"})
    in_file, in_catalog = certify(alice, host, big, inline=False), certify(alice, host, small, inline=True)
    assert blob_file(grid, sha(big)).exists()
    assert xwpy(grid, tokens["bob"], "delete", "job", str(in_file), check=False).returncode == Exit.REFUSED
    out = json.loads(xwpy(grid, tokens["alice"], "delete", "job", str(in_file), str(in_catalog), "--json").stdout)
    assert out == {"jobs": 2, "data": 0, "blobs": 2}  # the file, and the small result the catalog held
    assert not blob_file(grid, sha(big)).exists()
    for jid in (in_file, in_catalog):
        for who in (alice, admin):
            with pytest.raises(ClientError) as e:
                who.job(jid)
            assert e.value.status == 404
        for path in (f"/jobs/{jid}/result", f"/data/{sha(big)}", f"/data/{sha(small)}"):
            assert raw_status(grid, tokens["alice"], path) == 404
    [again] = alice.submit([{"app": "square", "args": ["2"]}])
    assert again > in_catalog  # a deleted job's id is not given again

    # A blob whose data row is deleted while a live job still uses it as an input stays, through
    # the deletion and the retention rounds, until that job is deleted too.
    used = alice.put_bytes(b"input of a live job")["sha256"]
    [live] = alice.submit([{"app": "square", "args": ["3"], "inputs": [{"name": "in", "sha256": used}]}])
    old = time.time() - 3600
    os.utime(blob_file(grid, used), (old, old))  # stored long ago: only the reference keeps it
    assert json.loads(xwpy(grid, tokens["alice"], "delete", "data", used, "--json").stdout) == \
        {"jobs": 0, "data": 1, "blobs": 0}
    assert blob_file(grid, used).exists()
    orphan = b"an upload whose report never came"  # a file nothing refers to: the retention round's
    blob_file(grid, sha(orphan)).parent.mkdir(parents=True, exist_ok=True)
    blob_file(grid, sha(orphan)).write_bytes(orphan)
    os.utime(blob_file(grid, sha(orphan)), (old, old))
    wait_for(lambda: not blob_file(grid, sha(orphan)).exists(), 60, "a retention round to remove the orphan")
    assert blob_file(grid, used).exists()  # that round saw it too, referenced: kept
    assert raw_status(grid, tokens["alice"], f"/data/{used}") == 404  # no longer alice's data to read
    xwpy(grid, tokens["alice"], "delete", "job", str(live), str(again))
    assert not blob_file(grid, used).exists()

    # Quotas: jobs in progress and bytes stored, per user (one line, exit 5; others unaffected).
    ids = bob.submit([{"app": "square", "args": [str(n)]} for n in range(3)], "bobs")
    r = xwpy(grid, tokens["bob"], "submit", "square", "4", check=False)
    refused_in_one_line(r, "bob has 3 jobs in progress", "max_jobs_per_user")
    carol.submit([{"app": "square", "args": ["9"]}])  # carol's own count
    assert json.loads(xwpy(grid, tokens["bob"], "delete", "batch", "bobs", "--json").stdout)["jobs"] == 3
    assert len(bob.submit([{"app": "square", "args": [str(n)]} for n in range(3)])) == 3
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"a" * 600)
    second.write_bytes(b"b" * 600)
    xwpy(grid, tokens["bob"], "data", "put", str(first))
    refused_in_one_line(xwpy(grid, tokens["bob"], "data", "put", str(second), check=False),
                        "bob stores 600 bytes", "max_stored_bytes_per_user")
    xwpy(grid, tokens["bob"], "data", "put", str(first))  # bob's already: nothing more stored
    xwpy(grid, tokens["carol"], "data", "put", str(second))  # carol's own bytes
    xwpy(grid, tokens["bob"], "delete", "data", sha(first.read_bytes()))
    xwpy(grid, tokens["bob"], "data", "put", str(second))
    assert ids and admin.call("GET", "/stats")["active_jobs"] == 4  # carol's and bob's last three


def test_a_restarted_coordinator_remembers_who_has_used_the_grid(grid):
    """alice runs jobs alone; the coordinator is killed and started again; then alice and bob (a
    newcomer) submit a job each, alice first, and one slot comes: bob's job runs first, for alice's
    recent usage was stored as her jobs were certified (a restart forgot it, and the older job went
    first: two users with nothing running and no past)."""
    grid.configure_scheduler(usage_half_life_seconds=600.0)
    grid.coordinator = grid.start_coordinator()
    alice, bob = grid.client(grid.user("alice")), grid.client(grid.user("bob"))
    alice.register_app(name="nap", command=["{python}", "-c", "import time; time.sleep(0.2)", "{args}"],
                       replication=1, quorum=1, access="public")
    worker = grid.start_worker("w1", grid.user("vol1", "worker"), slots=1)
    past = alice.submit([{"app": "nap", "args": [str(n)]} for n in range(3)])
    assert {j["status"] for j in grid.wait_final(alice, past, timeout=120).values()} == {"COMPLETED"}
    worker.stop()
    second = grid.user("vol2", "worker")
    grid.coordinator.stop(signal.SIGKILL)
    grid.coordinator = grid.start_coordinator()
    alice.close()
    bob.close()
    [older] = alice.submit([{"app": "nap", "args": ["alice"]}])
    [newer] = bob.submit([{"app": "nap", "args": ["bob"]}])
    grid.start_worker("w2", second, slots=1)  # one slot: the jobs run one after the other
    grid.wait_final(alice, [older], timeout=120)
    grid.wait_final(bob, [newer], timeout=120)
    assert bob.job(newer)["replicas"][0]["assigned_at"] < alice.job(older)["replicas"][0]["assigned_at"]
