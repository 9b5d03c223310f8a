"""Transfers against a real coordinator (issue 12, item 5): ``Range`` on blob downloads (still
hash-checked), upload sessions (offsets, bounds, staleness, a restart), and the worker's wire
(:class:`xwpy.worker.link.Link`, in this process) resuming through cuts and keeping to its caps.
The whole worker with big data through cuts: tests/grid/test_big_data.py."""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import ssl
import time

import pytest
import pytest_twisted
from twisted.internet import reactor

from tests.cutproxy import CutProxy
from tests.harness import wait_for
from xwpy import config
from xwpy.protocol import API_PREFIX as API
from xwpy.worker.link import Link, Refused
from xwpy.worker.throttle import TransferPolicy

pytestmark = pytest.mark.slow

MiB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def call(grid, token: str, method: str, path: str, body: bytes | None = None, **headers):
    """(status, headers, body) of one request to the coordinator; the body is read whole."""
    ctx = ssl.create_default_context(cafile=str(grid.cfg.ca_cert))
    conn = http.client.HTTPSConnection("127.0.0.1", grid.port, context=ctx, timeout=60)
    try:
        h = {"Authorization": f"Bearer {token}", **{k.replace("_", "-"): v for k, v in headers.items()}}
        conn.request(method, API + path, body=body, headers=h)
        resp = conn.getresponse()
        try:
            data = resp.read()
        except http.client.IncompleteRead as e:
            data = e.partial
            resp.cut = True
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def jcall(grid, token, method, path, payload=None, **headers):
    status, _, body = call(grid, token, method, path, None if payload is None else json.dumps(payload).encode(),
                           content_type="application/json", **headers)
    return status, json.loads(body) if body else None


def set_limits(grid, **limits) -> None:
    grid.cfg = dataclasses.replace(grid.cfg, limits=dataclasses.replace(grid.cfg.limits, **limits))
    (grid.cfg.dir / config.CONFIG_NAME).write_text(config.render(grid.cfg))


def blob_file(grid, digest: str):
    return grid.cfg.blobs / digest[:2] / digest[2:4] / digest


# -- Range ------------------------------------------------------------------------------------------


def test_blobs_are_served_in_ranges_that_resume_a_download(grid):
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(3 * MiB + 17)
    digest = grid.client(alice).put_bytes(data)["sha256"]
    path = f"/data/{digest}"

    status, h, body = call(grid, alice, "GET", path, range="bytes=1000000-")
    assert (status, h["content-range"], body) == (206, f"bytes 1000000-{len(data) - 1}/{len(data)}", data[1000000:])
    assert h["content-length"] == str(len(data) - 1000000) and h["accept-ranges"] == "bytes"
    status, h, body = call(grid, alice, "GET", path, range="bytes=-10")
    assert (status, body) == (206, data[-10:])
    status, h, body = call(grid, alice, "GET", path, range="bytes=10-20")  # not a resumption: all of it
    assert (status, body) == (200, data)
    status, h, body = call(grid, alice, "GET", path, range=f"bytes={len(data)}-")
    assert status == 416 and h["content-range"] == f"bytes */{len(data)}"
    assert json.loads(body)["error"] == "range_not_satisfiable"
    status, h, _ = call(grid, alice, "HEAD", path, range="bytes=5-")
    assert (status, h["content-length"]) == (206, str(len(data) - 5))
    # A stranger learns nothing from a range either.
    status, _, _ = call(grid, grid.user("bob"), "GET", path, range="bytes=5-")
    assert status == 404


def test_a_ranged_read_still_checks_the_whole_blob(grid):
    """A blob damaged before the range asked for: the range is not sent whole, and the blob is
    set aside (the part the client has is re-read and hashed, not trusted)."""
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(2 * MiB)
    digest = grid.client(alice).put_bytes(data)["sha256"]
    f = blob_file(grid, digest)
    damaged = bytearray(f.read_bytes())
    damaged[100] ^= 1
    f.write_bytes(bytes(damaged))
    ctx = ssl.create_default_context(cafile=str(grid.cfg.ca_cert))
    conn = http.client.HTTPSConnection("127.0.0.1", grid.port, context=ctx, timeout=60)
    conn.request("GET", f"{API}/data/{digest}", headers={"Authorization": f"Bearer {alice}", "Range": "bytes=1000-"})
    resp = conn.getresponse()
    assert resp.status == 206
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    status, _, body = call(grid, alice, "GET", f"/data/{digest}", range="bytes=1000-")
    assert status == 410 and json.loads(body)["error"] == "corrupt"


# -- upload sessions --------------------------------------------------------------------------------


def test_an_upload_session_takes_chunks_at_its_offset(grid):
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(MiB + 3)
    status, s = jcall(grid, alice, "POST", "/uploads", {"sha256": sha(data), "size": len(data), "name": "x.bin"})
    assert status == 200 and (s["offset"], s["complete"]) == (0, False)
    url = f"/uploads/{s['upload']}"
    status, _, body = call(grid, alice, "PATCH", url, data[:1000], upload_offset="5")
    assert status == 409 and json.loads(body)["error"] == "offset_mismatch"
    status, _, body = call(grid, alice, "PATCH", url, data[:1000])
    assert status == 400 and json.loads(body)["field"] == "Upload-Offset"
    status, _, body = call(grid, alice, "PATCH", url, data[:1000], upload_offset="0")
    assert (status, json.loads(body)["offset"]) == (200, 1000)
    assert jcall(grid, alice, "GET", url)[1]["offset"] == 1000
    # Someone else's session is not there for bob, nor for a host.
    assert jcall(grid, grid.user("bob"), "GET", url)[0] == 404
    status, _, body = call(grid, alice, "PATCH", url, data[1000:] + b"more", upload_offset="1000")
    assert status == 413  # past the size announced: refused, and nothing of it kept
    assert jcall(grid, alice, "GET", url)[1]["offset"] == 1000
    status, _, body = call(grid, alice, "PATCH", url, data[1000:], upload_offset="1000")
    done = json.loads(body)
    assert status == 200 and done["complete"] and done["data"] == {
        "sha256": sha(data), "size": len(data), "name": "x.bin", "access": "private", "owner": "alice"}
    assert call(grid, alice, "GET", f"/data/{sha(data)}")[2] == data
    # A client whose last answer was lost asks again, and learns it completed.
    assert jcall(grid, alice, "GET", url)[1]["complete"] is True
    assert call(grid, alice, "PATCH", url, b"x", upload_offset=str(len(data)))[0] == 200


def test_an_upload_that_does_not_hash_to_its_name_is_refused_and_forgotten(grid):
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(5000)
    _, s = jcall(grid, alice, "POST", "/uploads", {"sha256": sha(b"something else"), "size": len(data)})
    status, _, body = call(grid, alice, "PATCH", f"/uploads/{s['upload']}", data, upload_offset="0")
    assert status == 422 and json.loads(body)["error"] == "digest_mismatch"
    assert jcall(grid, alice, "GET", f"/uploads/{s['upload']}")[0] == 404
    assert call(grid, alice, "GET", f"/data/{sha(b'something else')}")[0] == 404
    assert not list((grid.cfg.blobs / "uploads").iterdir())


def test_upload_sessions_are_bounded_in_count_and_size(grid):
    set_limits(grid, max_upload_sessions=2, max_upload_bytes=10 * MiB)
    grid.start_coordinator()
    alice, bob = grid.user("alice"), grid.user("bob")
    status, body = jcall(grid, alice, "POST", "/uploads", {"sha256": sha(b""), "size": 10 * MiB + 1})
    assert status == 413 and body["field"] == "size"
    ids = [jcall(grid, alice, "POST", "/uploads", {"sha256": sha(bytes([i])), "size": 10})[1]["upload"]
           for i in range(2)]
    status, body = jcall(grid, alice, "POST", "/uploads", {"sha256": sha(b"3"), "size": 10})
    assert status == 429 and body["error"] == "too_many_uploads"
    assert jcall(grid, bob, "POST", "/uploads", {"sha256": sha(b"3"), "size": 10})[0] == 200  # bob's own count
    assert jcall(grid, alice, "DELETE", f"/uploads/{ids[0]}") == (200, {"cancelled": ids[0]})
    assert jcall(grid, alice, "POST", "/uploads", {"sha256": sha(b"3"), "size": 10})[0] == 200
    vol = grid.user("vol", "worker")
    assert jcall(grid, vol, "POST", "/uploads", {"sha256": sha(b"3"), "size": 10})[0] == 403
    host = jcall(grid, vol, "POST", "/work/register", {"name": "h", "cpus": 1, "memory": 1 << 30})[1]["token"]
    status, body = jcall(grid, host, "POST", "/uploads", {"sha256": sha(b"3"), "size": 10})
    assert status == 403 and "no work" in body["message"]


def test_an_upload_session_untouched_for_long_is_removed(grid):
    set_limits(grid, upload_session_seconds=5.0)
    grid.start_coordinator()
    alice = grid.user("alice")
    sid = jcall(grid, alice, "POST", "/uploads", {"sha256": sha(b"x" * 10), "size": 10})[1]["upload"]
    assert call(grid, alice, "PATCH", f"/uploads/{sid}", b"x" * 5, upload_offset="0")[0] == 200
    assert len(list((grid.cfg.blobs / "uploads").iterdir())) == 2  # its record and its part
    wait_for(lambda: jcall(grid, alice, "GET", f"/uploads/{sid}")[0] == 404, 60, "the stale session removed")
    assert not list((grid.cfg.blobs / "uploads").iterdir())


def test_an_upload_session_outlives_a_coordinator_restart(grid):
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(2 * MiB)
    _, s = jcall(grid, alice, "POST", "/uploads", {"sha256": sha(data), "size": len(data)})
    url = f"/uploads/{s['upload']}"
    assert call(grid, alice, "PATCH", url, data[:MiB], upload_offset="0")[0] == 200
    grid.coordinator.stop()
    grid.start_coordinator()
    assert jcall(grid, alice, "GET", url)[1]["offset"] == MiB
    status, _, body = call(grid, alice, "PATCH", url, data[MiB:], upload_offset=str(MiB))
    assert status == 200 and json.loads(body)["complete"]  # checked over the whole file
    assert call(grid, alice, "GET", f"/data/{sha(data)}")[2] == data


# -- the worker's wire, in this process -------------------------------------------------------------


def link(grid, url: str, token: str, **policy) -> Link:
    return Link(reactor, url, grid.cfg.ca_cert.read_bytes(), token, transfers=TransferPolicy(**policy))


@pytest_twisted.ensureDeferred
async def test_downloads_and_uploads_resume_after_cuts(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(16 * MiB)
    digest = grid.client(alice).put_bytes(data)["sha256"]
    cuts = [3 * MiB, 5 * MiB, 11 * MiB]
    proxy = CutProxy(grid.port, down=cuts, up=cuts)
    wire = link(grid, proxy.url, alice)
    try:
        dest = tmp_path / "got"
        assert await wire.download(digest, dest) == len(data)
        assert dest.read_bytes() == data and not (tmp_path / "got.part").exists()
        assert proxy.cut_count["down"] == 3 and proxy.sent["down"] <= 1.05 * len(data)
        up = tmp_path / "up"
        up.write_bytes(data[::-1])
        info = await wire.upload(up, sha(data[::-1]))
        assert info["complete"] and info["data"]["sha256"] == sha(data[::-1])
        assert proxy.cut_count["up"] == 3 and proxy.sent["up"] <= 1.1 * len(data)
        assert call(grid, alice, "GET", f"/data/{sha(data[::-1])}")[2] == data[::-1]
    finally:
        await wire.close()
        proxy.close()


@pytest_twisted.ensureDeferred
async def test_a_download_resumes_from_a_part_left_by_an_earlier_attempt(grid, tmp_path):
    """A worker that died mid-download (the part file stays) fetches only the rest; a part that
    is longer than the blob or wrong is started over, and nothing wrong is ever kept."""
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(4 * MiB)
    digest = grid.client(alice).put_bytes(data)["sha256"]
    proxy = CutProxy(grid.port)
    wire = link(grid, proxy.url, alice)
    try:
        (tmp_path / "a.part").write_bytes(data[:3 * MiB])
        await wire.download(digest, tmp_path / "a")
        assert (tmp_path / "a").read_bytes() == data and proxy.sent["down"] < 1.2 * MiB
        (tmp_path / "b.part").write_bytes(data + b"extra")  # longer than the blob: 416, then all of it
        await wire.download(digest, tmp_path / "b")
        assert (tmp_path / "b").read_bytes() == data
        (tmp_path / "c.part").write_bytes(b"not the start of it")  # wrong: the whole is checked
        with pytest.raises(Refused) as e:
            await wire.download(digest, tmp_path / "c")
        assert e.value.code == "digest_mismatch"
        assert not (tmp_path / "c").exists() and not (tmp_path / "c.part").exists()
    finally:
        await wire.close()
        proxy.close()


@pytest_twisted.ensureDeferred
async def test_transfers_keep_to_their_caps(grid, tmp_path):
    """Measured rates within 20 % of the caps (4 MiB/s each way, 16 MiB)."""
    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(16 * MiB)
    digest = grid.client(alice).put_bytes(data)["sha256"]
    cap = 4 * MiB
    wire = link(grid, grid.url, alice, download_rate=cap, upload_rate=cap)
    try:
        started = time.monotonic()
        await wire.download(digest, tmp_path / "got")
        down = len(data) / (time.monotonic() - started)
        up = tmp_path / "up"
        up.write_bytes(data[::-1])
        started = time.monotonic()
        await wire.upload(up, sha(data[::-1]))
        upload = len(data) / (time.monotonic() - started)
    finally:
        await wire.close()
    print(f"measured: download {down / MiB:.2f} MiB/s, upload {upload / MiB:.2f} MiB/s, cap 4 MiB/s")
    assert 0.8 * cap <= down <= 1.2 * cap, f"download at {down / MiB:.2f} MiB/s, cap 4"
    assert 0.8 * cap <= upload <= 1.2 * cap, f"upload at {upload / MiB:.2f} MiB/s, cap 4"


# -- the scientist's CLI ----------------------------------------------------------------------------


def test_the_cli_uploads_and_downloads_through_cuts(grid, tmp_path):
    """``xwpy data put`` / ``data get`` (Client.put_data, get_data) resume after a cut instead of
    starting over; a part left by an interrupted run is resumed too."""
    from xwpy.client.api import Client, Endpoint

    grid.start_coordinator()
    alice = grid.user("alice")
    data = os.urandom(16 * MiB)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    cuts = [3 * MiB, 9 * MiB]
    proxy = CutProxy(grid.port, down=cuts, up=cuts)
    try:
        client = Client(Endpoint(proxy.url, alice, grid.cfg.ca_cert))
        info = client.put_data(src, name="in.bin")
        assert info == {"sha256": sha(data), "size": len(data), "name": "in.bin", "access": "private", "owner": "alice"}
        assert proxy.cut_count["up"] == 2 and proxy.sent["up"] <= 1.1 * len(data)
        assert client.get_data(sha(data), tmp_path / "out.bin") == len(data)
        assert (tmp_path / "out.bin").read_bytes() == data
        assert proxy.cut_count["down"] == 2 and proxy.sent["down"] <= 1.1 * len(data)
        (tmp_path / ".again.bin.part").write_bytes(data[:10 * MiB])  # an interrupted run's part
        before = proxy.sent["down"]
        client.get_data(sha(data), tmp_path / "again.bin")
        assert (tmp_path / "again.bin").read_bytes() == data and proxy.sent["down"] - before < 7 * MiB
        client.close()
    finally:
        proxy.close()
