"""Data whose content does not match its sha256 (issue 5): refused on upload, and never served or
used when a stored copy is damaged — a blob file on the coordinator's disk, a small blob inline
in its catalog, a worker's cached input. The coordinator cuts a damaged download off before its
end and answers 410 ``corrupt`` afterwards; the worker fetches a damaged cache entry again; the
CLI says so in one line. A new upload of the right bytes repairs the store.

(tests/grid/test_bad_input.py::test_uploads_must_match_their_name covers a plain PUT of the wrong
bytes; here: chunked, cut short, by a host, inline in a report.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import time
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.grid.conftest import SQUARE, UPPER, stdout_of
from tests.harness import Grid, wait_for
from tests.reliability import rawhttp
from tests.reliability.ledger import server_errors
from tests.reliability.test_hostile_cli import NO_ENV, check
from xwpy import archive
from xwpy.client.cli import cli
from xwpy.client.exits import Exit
from xwpy.protocol import API_PREFIX as API

pytestmark = pytest.mark.slow


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def damage(path: Path, at: int | None = None) -> None:
    """Flip one bit of a file in place (a disk fault, or someone's hand)."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def blob_file(g: Grid, digest: str) -> Path:
    return g.cfg.blobs / digest[:2] / digest[2:4] / digest


def xwpy(g: Grid, token: str, *argv: str):
    result = CliRunner().invoke(cli, ["--url", g.url, "--token", token, "--ca", str(g.cfg.ca_cert), *argv],
                                env=NO_ENV, catch_exceptions=True)
    check(result, list(argv))  # never a traceback; an error is one line
    return result


def head(method: str, path: str, token: str, **headers) -> bytes:
    lines = [f"{method} {API}{path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A coordinator with a fake host (API calls, no worker process) that completes jobs on demand."""
    g = Grid(tmp_path_factory.mktemp("corrupt"))
    try:
        g.start_coordinator()
        alice = g.client(g.user("alice"))
        alice.register_app(name="square", command=SQUARE, replication=1, quorum=1)
        vol = g.user("vol", "worker")
        host = g.client(g.client(vol).call("POST", "/work/register", {"name": "h", "cpus": 1, "memory": 1 << 34})["token"])
        host.call("POST", "/work/hello", {})
        yield g, alice, host
    finally:
        g.close()


def take(host, job_id: int) -> dict:
    [a] = host.call("POST", "/work/request", {"slots": 1, "wait": 10})["replicas"]
    assert a["job_id"] == job_id
    return a


def complete(alice, host, result: bytes, *, inline: bool) -> int:
    """A job of alice's certified with ``result`` (inline in the report, or uploaded first)."""
    [job] = alice.submit([{"app": "square", "args": ["1"]}])
    a = take(host, job)
    report = {"replica_id": a["replica_id"], "exit_code": 0, "result_sha256": sha(result)}
    if inline:
        report["inline"] = base64.b64encode(result).decode()
    else:
        host.put_bytes(result)
    assert host.call("POST", "/work/results", {"results": [report]})["outcome"] == {str(a["replica_id"]): "accepted"}
    assert alice.job(job)["status"] == "COMPLETED"
    return job


def test_uploads_that_do_not_match_their_sha256_are_refused(site, ledger):
    g, alice, host = site
    started = time.monotonic()
    good = os.urandom(100_000)
    bad = bytearray(good)
    bad[5000] ^= 1
    tried = refused = stored_wrong = 0

    # Chunked, the wrong bytes under the right name.
    with rawhttp.connect(g) as sock:
        sock.sendall(head("PUT", f"/data/{sha(good)}", alice.endpoint.token, Transfer_Encoding="chunked"))
        sock.sendall(b"%x\r\n" % len(bad) + bytes(bad) + b"\r\n0\r\n\r\n")
        reply = rawhttp.read_reply(sock)
    tried += 1
    refused += reply.status == 422 and reply.json()["field"] == "sha256"

    # Cut short: the connection closes halfway through the announced length.
    with rawhttp.connect(g) as sock:
        sock.sendall(head("PUT", f"/data/{sha(good)}", alice.endpoint.token, Content_Length=len(good)))
        sock.sendall(good[:50_000])
    tried += 1
    status, _ = raw_get(g, alice.endpoint.token, f"/data/{sha(good)}")
    refused += status == 404  # nothing stored from half a body

    # A host's result upload, and a result inline in a report, that are not what they claim.
    [job] = alice.submit([{"app": "square", "args": ["2"]}])
    a = take(host, job)
    result = archive.from_files({"stdout": b"4\n"})
    with rawhttp.connect(g) as sock:
        sock.sendall(head("PUT", f"/data/{sha(result)}", host.endpoint.token, Content_Length=len(result) + 1) + result + b"!")
        reply = rawhttp.read_reply(sock)
    tried += 1
    refused += reply.status == 422
    outcome = host.call("POST", "/work/results", {"results": [{
        "replica_id": a["replica_id"], "exit_code": 0, "result_sha256": sha(result),
        "inline": base64.b64encode(result + b"!").decode()}]})["outcome"]
    tried += 1
    refused += outcome == {str(a["replica_id"]): "digest-mismatch"}
    stored_wrong += alice.job(job)["status"] == "COMPLETED"
    alice.cancel([job])  # a failed replica may be retried on its host: later tests take their own jobs

    # The right bytes are taken after all that, and served as they are.
    assert alice.put_bytes(good)["sha256"] == sha(good)
    status, body = raw_get(g, alice.endpoint.token, f"/data/{sha(good)}")
    stored_wrong += status != 200 or body != good
    log = g.coordinator.output()
    ledger.record("uploads whose content does not match their sha256", load="chunked, cut short, by a host, inline",
                  bad_inputs=tried, wrong=stored_wrong, server_errors=server_errors(log),
                  seconds=time.monotonic() - started)
    assert refused == tried and stored_wrong == 0
    assert server_errors(log) == 0


def raw_get(g: Grid, token: str, path: str) -> tuple[int, bytes]:
    reply = rawhttp.exchange(g, head("GET", path, token))
    return reply.status, reply.body


def test_a_damaged_blob_is_never_served(site, ledger, tmp_path):
    g, alice, host = site
    started = time.monotonic()
    token = alice.endpoint.token
    tried = refused = wrong = 0

    # A data file larger than one block, damaged near its end; another in its first block.
    for size, at in ((300_000, 290_000), (1000, 10)):
        data = os.urandom(size)
        digest = alice.put_bytes(data, access="public")["sha256"]
        damage(blob_file(g, digest), at)
        tried += 1
        out = tmp_path / f"got-{size}"
        r = xwpy(g, token, "data", "get", digest, str(out))
        refused += r.exit_code == Exit.SERVER_FAULT and "corrupt" in r.stderr and not out.exists()
        wrong += out.exists() and out.read_bytes() != data
        status, body = raw_get(g, token, f"/data/{digest}")  # set aside now: a 410 at once
        refused += status == 410 and json.loads(body)["error"] == "corrupt"
        # Uploading the right bytes again repairs it.
        alice.put_bytes(data, access="public")
        assert xwpy(g, token, "data", "get", digest, str(out)).exit_code == 0
        wrong += out.read_bytes() != data

    # Damaged, then uploaded again before anyone downloads it: the new upload repairs it.
    data = os.urandom(70_000)
    digest = alice.put_bytes(data)["sha256"]
    damage(blob_file(g, digest))
    alice.put_bytes(data)
    tried += 1
    status, body = raw_get(g, token, f"/data/{digest}")
    refused += status == 200 and body == data
    wrong += status == 200 and len(body) == len(data) and body != data  # (a cut-off body is not data)

    # A first download of a damaged file is cut off before its end, never delivered whole.
    data = os.urandom(200_000)
    digest = alice.put_bytes(data)["sha256"]
    damage(blob_file(g, digest))
    reply = rawhttp.exchange(g, head("GET", f"/data/{digest}", token))
    tried += 1
    cut = reply.status == 200 and len(reply.body) < int(reply.headers["content-length"])
    refused += cut
    wrong += not cut and reply.body != data

    # Certified results: inline in the catalog (re-compressed wrong bytes, or not zlib at all) and in a file.
    db = g.cfg.database_url.removeprefix("sqlite:///")
    for how in ("other bytes", "not zlib", "file"):
        result = archive.from_files({"stdout": os.urandom(100_000) if how == "file" else b"9\n"})
        job = complete(alice, host, result, inline=how != "file")
        if how == "file":
            damage(blob_file(g, sha(result)))
        else:
            evil = zlib.compress(archive.from_files({"stdout": b"10\n"})) if how == "other bytes" else b"\x00garbage"
            with sqlite3.connect(db, timeout=30) as conn:
                assert conn.execute("UPDATE small_blobs SET data = ? WHERE sha256 = ?", (evil, sha(result))).rowcount == 1
            [final] = alice.call("POST", "/jobs/wait", {"ids": [job]})["final"]
            assert final["result"] is None  # a damaged small blob never rides along with a futures' answer
        tried += 1
        out = tmp_path / f"r{job}.tar"
        r = xwpy(g, token, "result", str(job), "-o", str(out))
        refused += r.exit_code == Exit.SERVER_FAULT and "corrupt" in r.stderr and not out.exists()
        wrong += out.exists()
        status, body = raw_get(g, token, f"/jobs/{job}/result")
        refused += status == 410 and json.loads(body)["error"] == "corrupt"

    log = g.coordinator.output()
    ledger.record("damaged stored blobs: data files, catalog results, result files",
                  load="xwpy data get, xwpy result, raw GETs", faults=f"{tried} blobs damaged",
                  bad_inputs=tried, wrong=wrong, server_errors=server_errors(log), seconds=time.monotonic() - started)
    assert wrong == 0
    assert refused == 2 * 2 + 1 + 1 + 2 * 3, refused
    assert log.count("is damaged") >= tried and server_errors(log) == 0


def test_workers_never_run_on_damaged_inputs(tmp_path, ledger):
    """A worker re-fetches a damaged cached input; a job whose input is damaged on the
    coordinator fails rather than runs on it; once repaired it runs on the right bytes."""
    g = Grid(tmp_path)
    started = time.monotonic()
    wrong = 0
    try:
        g.start_coordinator()
        alice = g.client(g.user("alice"))
        alice.register_app(name="upper", command=UPPER, replication=1, quorum=1)
        vol = g.user("vol", "worker")
        w = g.start_worker("w1", vol)
        text = b"the right words\n" * 5000  # 80 KB: more than one block
        digest = alice.put_bytes(text, access="public")["sha256"]

        def run(tag: str, max_errors: int = 3) -> dict:
            [job] = alice.submit([{"app": "upper", "args": [tag], "inputs": [{"name": "data.txt", "sha256": digest}],
                                   "max_errors": max_errors}])
            return g.wait_final(alice, [job], 90)[job]

        def right(job: dict, tag: str) -> bool:
            return job["status"] == "COMPLETED" and stdout_of(alice, job["id"], tmp_path) == text.decode().upper() + " " + tag + "\n"

        first = run("first")
        wrong += not right(first, "first")
        # The worker's cached copy is damaged: it notices, fetches it again, runs on the right bytes.
        cached = g.work_root / "w1" / "cache" / digest
        assert cached.exists()
        damage(cached)
        again = run("again")
        wrong += not right(again, "again")
        wait_for(lambda: "is damaged" in w.output(), 30, "the worker to log the damaged cache entry")

        # Damaged on the coordinator, never fetched by this worker before (a new blob): it fails.
        text = b"other words\n" * 8000
        digest = alice.put_bytes(text, access="public")["sha256"]
        damage(blob_file(g, digest))
        failed = run("failed", max_errors=1)  # one worker: a host is not given a job it failed again
        wrong += failed["status"] == "COMPLETED"
        errors = [r["error"] for r in alice.job(failed["id"])["replicas"]]
        # Repaired by a new upload: the next job runs on the right bytes.
        alice.put_bytes(text, access="public")
        repaired = run("repaired")
        wrong += not right(repaired, "repaired")
        log = g.coordinator.output()
    finally:
        g.close()
    ledger.record("damaged inputs: a worker's cache, the coordinator's copy", load="4 jobs, 1 worker",
                  faults="2 inputs damaged", bad_inputs=2, wrong=wrong, server_errors=server_errors(log),
                  seconds=time.monotonic() - started)
    assert wrong == 0
    assert failed["status"] == "ERROR" and all(errors), errors
    assert server_errors(log) == 0
