"""Image apps against a real coordinator and workers: hostile archives refused at registration
with one line and no app left behind; a good image registered and run."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.grid.test_cli import run
from tests.harness import wait_for
from xwpy.image import build

pytestmark = pytest.mark.slow


def _layer(*members: tuple[str, bytes, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, link in members:
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = kind, link
            data = b"GOOD" if kind == tarfile.REGTYPE else b""
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def hostile_images(tmp_path):
    escaping = tmp_path / "escaping.tar"
    build.write(escaping, [_layer(("etc", tarfile.SYMTYPE, "../../../etc"))])
    device = tmp_path / "device.tar"
    build.write(device, [_layer(("dev/mem", tarfile.CHRTYPE, ""))])
    damaged = tmp_path / "damaged.tar"
    build.write(damaged, [_layer(("ok", tarfile.REGTYPE, ""))], fmt="docker-archive")
    data = bytearray(damaged.read_bytes())
    i = data.index(b"GOOD")  # the layer's only file, changed: its diff_id no longer holds
    data[i:i + 4] = b"EVIL"
    damaged.write_bytes(bytes(data))
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file\n" * 50)
    return {"escaping": (escaping, "leaves the image"), "device": (device, "device node"),
            "damaged": (damaged, "does not match its diff_id"), "junk": (junk, "not an image archive")}


@pytest.fixture
def image_grid(grid):
    grid.start_coordinator()
    alice = json.loads(run(grid, grid.admin_token, "users", "add", "alice", "--json").stdout)["token"]
    return grid, alice


def test_hostile_image_archives_are_refused_with_one_line_and_leave_no_app(image_grid, tmp_path):
    grid, alice = image_grid
    for name, (path, why) in hostile_images(tmp_path).items():
        r = run(grid, alice, "app", "register", name, "--image", str(path), "--", "/bin/true", check=False)
        assert r.returncode != 0, name
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and why in lines[0], (name, r.stderr)
    assert json.loads(run(grid, alice, "app", "list", "--json").stdout) == []


def test_an_image_app_is_registered_with_its_config(image_grid, tmp_path):
    grid, alice = image_grid
    root = build.busybox_root(tmp_path / "root")
    path = tmp_path / "bb.tar"
    image_id = build.write(path, [build.layer_from_dir(root)], entrypoint=["/bin/sh", "-c"], workdir="/work",
                           env=["PATH=/bin", "GREETING=hello"])
    run(grid, alice, "app", "register", "bb", "--image", str(path), "--", "echo $GREETING {args}")
    info = json.loads(run(grid, alice, "app", "show", "bb").stdout)
    spec = info["image_spec"]
    assert spec["id"] == image_id and spec["sha256"] == info["image"]
    assert spec["entrypoint"] == ["/bin/sh", "-c"] and spec["workdir"] == "/work" and "GREETING=hello" in spec["env"]
    assert spec["files"] > 10 and spec["unpacked_bytes"] > 100_000


def test_app_versions_per_platform(image_grid, tmp_path):
    grid, alice = image_grid
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "run.sh").write_text("echo native\n")
    run(grid, alice, "app", "register", "tool", "--bundle", str(bundle), "--platform", "linux-aarch64", "--", "/bin/sh", "run.sh")
    r = run(grid, alice, "app", "version", "tool", "--platform", "linux-x86_64", "--bundle", str(bundle), "--json")
    assert [v["platform"] for v in json.loads(r.stdout)["versions"]] == ["linux-aarch64", "linux-x86_64"]
    again = run(grid, alice, "app", "version", "tool", "--platform", "linux-x86_64", "--bundle", str(bundle), check=False)
    assert again.returncode != 0 and "has a version for linux-x86_64" in again.stderr
    bad = run(grid, alice, "app", "version", "tool", "--platform", "beos", "--bundle", str(bundle), check=False)
    assert bad.returncode != 0 and "platform" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    # A bundle app's versions are bundles; the catalog keeps them across a restart.
    img = tmp_path / "i.tar"
    build.write(img, [_layer(("f", tarfile.REGTYPE, ""))])
    mixed = run(grid, alice, "app", "version", "tool", "--platform", "any", "--image", str(img), check=False)
    assert mixed.returncode != 0 and "runs a bundle" in mixed.stderr
    grid.coordinator.stop()
    grid.start_coordinator()
    shown = json.loads(run(grid, alice, "app", "show", "tool").stdout)
    assert [v["platform"] for v in shown["versions"]] == ["linux-aarch64", "linux-x86_64"]


def test_an_image_app_runs_on_two_workers_and_each_unpacks_it_once(image_grid, tmp_path):
    """20 jobs, replication 2, on two sandboxed workers, in an image built here from busybox: each
    result is what the same command gives locally, and a second batch reuses each worker's
    unpacked image (one unpack per worker, from its log)."""
    import hashlib

    grid, alice = image_grid
    vol = json.loads(run(grid, grid.admin_token, "users", "add", "vol", "--role", "worker", "--json").stdout)["token"]
    vol2 = json.loads(run(grid, grid.admin_token, "users", "add", "vol2", "--role", "worker", "--json").stdout)["token"]
    workers = [grid.start_worker("w1", vol), grid.start_worker("w2", vol2)]
    root = build.busybox_root(tmp_path / "root")
    path = tmp_path / "bb.tar"
    build.write(path, [build.layer_from_dir(root)], entrypoint=["/bin/sh", "-c"], workdir="/work",
                env=["PATH=/bin", "GREETING=hello"], fmt="docker-archive")
    run(grid, alice, "app", "register", "bb", "--image", str(path), "--replication", "2", "--quorum", "2", "--",
        'sha256sum < text.txt; echo "$0 $GREETING $(pwd) $(id -u)"; ls /', "{args}")
    client = grid.client(alice)
    wait_for(lambda: len(grid.client().hosts()) == 2, 60, "two workers")
    texts = {}
    for batch in ("b1", "b2"):
        specs = []
        for i in range(10):
            data = f"text {batch} {i}\n".encode() * (i + 1)
            sha = client.put_bytes(data, name=f"t{i}.txt")["sha256"]
            specs.append({"app": "bb", "args": [f"{batch}-{i}"], "inputs": [{"name": "text.txt", "sha256": sha}]})
            texts[f"{batch}-{i}"] = data
        ids = client.submit(specs, batch=batch)
        grid.wait_final(client, ids, timeout=180)
        for jid, spec in zip(ids, specs):
            job = client.job(jid)
            assert job["status"] == "COMPLETED", job
            assert len({r["host_id"] for r in job["replicas"] if r["validation"] == "VALID"}) == 2
            out = stdout_of(client, jid, tmp_path)
            tag = spec["args"][0]
            want_sha = hashlib.sha256(texts[tag]).hexdigest()
            lines = out.splitlines()
            assert lines[0] == f"{want_sha}  -"
            assert lines[1] == f"{tag} hello /work 1000"
            # The image is the whole file system: busybox's root, nothing of this machine's.
            assert set(lines[2:]) == {"bin", "dev", "etc", "job", "lib", "lib64", "proc", "tmp", "work"}
    for w in workers:
        assert w.output().count("unpacked:") == 1, w.output()[-2000:]


def stdout_of(client, job_id, tmp_path):
    from xwpy import archive

    dest = tmp_path / f"r{job_id}.tar"
    client.result(job_id, dest)
    return archive.read_files(dest.read_bytes())["stdout"].decode()


def test_an_image_the_worker_refuses_at_unpack_fails_its_job_and_the_worker_keeps_serving(image_grid, tmp_path):
    """A layer with a link ``etc -> OUTSIDE`` (an absolute path: a directory of this test, not
    the machine's /etc, so that a broken check could not harm the machine) then a file
    ``etc/passwd``: each header alone is fine, so the coordinator takes the image, but the worker
    refuses to write through the link. The job ends in ERROR with the refusal in its replicas'
    errors, nothing is written outside the worker's cache, no half image is left in the cache, and
    the same worker then runs a good image's job."""
    grid, alice = image_grid
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("untouched\n")
    passwd = (outside / "passwd").read_bytes()
    vol = json.loads(run(grid, grid.admin_token, "users", "add", "vol", "--role", "worker", "--json").stdout)["token"]
    worker = grid.start_worker("w1", vol)
    through = tmp_path / "through.tar"
    build.write(through, [_layer(("etc", tarfile.SYMTYPE, str(outside)), ("etc/passwd", tarfile.REGTYPE, ""))])
    run(grid, alice, "app", "register", "through", "--image", str(through), "--replication", "1", "--quorum", "1",
        "--", "/bin/true")
    root = build.busybox_root(tmp_path / "root")
    good = tmp_path / "bb.tar"
    build.write(good, [build.layer_from_dir(root)], entrypoint=["/bin/sh", "-c"], env=["PATH=/bin"])
    run(grid, alice, "app", "register", "bb", "--image", str(good), "--replication", "1", "--quorum", "1",
        "--", "echo still $0", "{args}")
    client = grid.client(alice)
    wait_for(lambda: len(grid.client().hosts()) == 1, 60, "the worker")

    [bad_id] = client.submit([{"app": "through", "args": []}])
    grid.wait_final(client, [bad_id], timeout=120)
    job = client.job(bad_id)
    assert job["status"] == "ERROR", job
    failed = [r for r in job["replicas"] if r["status"] == "FAILED"]
    assert len(failed) == job["max_errors"], job["replicas"]
    for r in failed:
        assert "'etc/passwd'" in r["error"] and "is not a directory" in r["error"], r
    assert "replicas failed" in job["error"], job
    assert (outside / "passwd").read_bytes() == passwd and [p.name for p in outside.iterdir()] == ["passwd"]
    images = grid.work_root / "w1" / "images"
    assert list(images.iterdir()) == []  # no half image, no .tmp-* (the good image is not there yet)
    assert "unpacked:" not in worker.output()

    [good_id] = client.submit([{"app": "bb", "args": ["serving"]}])
    grid.wait_final(client, [good_id], timeout=120)
    assert client.job(good_id)["status"] == "COMPLETED", client.job(good_id)
    assert stdout_of(client, good_id, tmp_path) == "still serving\n"
    assert [p.name for p in images.iterdir()] == [build_id(good)]
    assert worker.output().count("unpacked:") == 1
    assert (outside / "passwd").read_bytes() == passwd and [p.name for p in outside.iterdir()] == ["passwd"]
    assert worker.alive()


def build_id(path) -> str:
    from xwpy.image import archive

    return archive.inspect(path).id.removeprefix("sha256:")


def test_the_readme_images_session_works_as_written(grid, tmp_path):
    """The README's image example, typed as one shell session on a site with two volunteers."""
    import re
    import subprocess
    from pathlib import Path

    from tests.grid.test_newcomer import xwpy_env

    grid.start_coordinator()
    alice = grid.user("alice")
    for i in range(2):
        grid.start_worker(f"w{i}", grid.user(f"vol{i}", "worker"))
    wait_for(lambda: len(grid.client().hosts()) == 2, 60, "two workers")
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"\*\*Images\.\*\*.*?```sh\n(.*?)```", text, re.S).group(1)
    cwd = tmp_path / "alice"
    cwd.mkdir()
    r = subprocess.run(["bash", "-ec", block], capture_output=True, text=True, env=xwpy_env(grid, alice), cwd=cwd,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "3 text.txt", r.stdout
