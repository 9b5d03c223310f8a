"""A light install (issue 12 item 6): the wheel, installed into a fresh virtualenv outside the
checkout without the chain extra, gives a worker that runs jobs on a site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import wait_for
from xwpy.localgrid import Proc

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_a_worker_installed_from_the_wheel_without_the_chain_runs_jobs(grid, tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = wheels.glob("xwpy-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True, timeout=900)
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    probe = subprocess.run([str(py), "-c", "import importlib.util as u, xwpy; "
                            "print(xwpy.__file__); print(u.find_spec('web3') is None)"],
                           capture_output=True, text=True, env=clean, cwd=tmp_path, check=True)
    where, light = probe.stdout.split()
    assert where.startswith(str(venv)) and light == "True"  # xwpy from the wheel, no chain stack
    # The web dashboard's files are package data: they ship in the wheel.
    pages = subprocess.run([str(py), "-c", "from xwpy.server import web; print(sorted(web.pages()))"],
                           capture_output=True, text=True, env=clean, cwd=tmp_path)
    from xwpy.server import web

    assert pages.returncode == 0 and pages.stdout.strip() == str(sorted(web.FILES)), pages.stderr[-2000:]

    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="where", replication=1, quorum=1, command=[
        "{python}", "-c", "import sys, xwpy; print(sys.prefix == sys.base_prefix or 'venv', xwpy.__file__)"])
    log = tmp_path / "worker.log"
    with open(log, "ab") as f:
        popen = subprocess.Popen(
            [str(venv / "bin" / "xwpy"), "worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert),
             "--state", str(tmp_path / "state"), "--no-idle-check", "--wait", "2"],
            stdout=f, stderr=subprocess.STDOUT, env={**clean, "XWPY_TOKEN": grid.user("vol", "worker")},
            cwd=tmp_path, start_new_session=True)
    grid.procs.append(Proc("wheel-worker", popen, log))
    [jid] = alice.submit([{"app": "where", "args": []}])
    job = grid.wait_final(alice, [jid], timeout=120)[jid]
    assert job["status"] == "COMPLETED", (job, log.read_text()[-2000:])
    from tests.grid.test_image_apps import stdout_of

    out = stdout_of(alice, jid, tmp_path).split()
    assert out == ["venv", where], out  # the job ran the install's interpreter and its xwpy
    assert os.path.getsize(log) and "Traceback" not in log.read_text()
