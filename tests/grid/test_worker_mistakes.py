"""A volunteer's mistakes starting a worker: one line, a non-zero exit, nothing started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import wait_for
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow


def worker(grid, *args, token="x"):
    return subprocess.run([sys.executable, "-m", "xwpy", "worker", "--no-idle-check", *args], capture_output=True,
                          text=True, env={**child_env(), "XWPY_TOKEN": token}, timeout=120)


def one_line(r) -> str:
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_a_second_worker_on_the_same_state_directory_refuses_to_start(grid):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    first = grid.start_worker("w", vol)
    wait_for(lambda: len(grid.client().hosts()) == 1, 60, "the first worker")
    r = worker(grid, "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert), "--state", str(grid.work_root / "w"),
               token=vol)
    assert "is in use by another worker" in one_line(r)
    assert first.alive() and len(grid.client().hosts()) == 1


def test_settings_a_worker_cannot_use_are_refused_at_once(grid, tmp_path):
    state = str(tmp_path / "state")
    ca = str(grid.cfg.ca_cert)
    bad_ca = tmp_path / "notes.txt"
    bad_ca.write_text("not a certificate\n")
    cases = {
        "http": (["--coordinator", "http://127.0.0.1:8443", "--ca", ca], "--coordinator must be https://host:port"),
        "ca": (["--coordinator", "https://127.0.0.1:8443", "--ca", str(bad_ca)], "not a usable CA certificate"),
        "cores": (["--coordinator", "https://127.0.0.1:8443", "--ca", ca, "--cores", "4096"], "--cores 4096: this machine has"),
        "memory": (["--coordinator", "https://127.0.0.1:8443", "--ca", ca, "--memory", "64T"], "this machine has"),
        "size": (["--coordinator", "https://127.0.0.1:8443", "--ca", ca, "--memory", "lots"], "is not a size"),
    }
    for name, (args, why) in cases.items():
        assert why in one_line(worker(grid, *args, "--state", state)), name


def test_a_site_typed_on_the_command_line_beats_an_exported_token(grid):
    """`--site DIR` (before or after the command) is that site's admin, whatever XWPY_TOKEN says;
    without it, the exported token is who you are."""
    grid.start_coordinator()
    alice = grid.user("alice")
    env = {**child_env(), "XWPY_URL": grid.url, "XWPY_TOKEN": alice, "XWPY_CA": str(grid.cfg.ca_cert)}

    def whoami(*args):
        r = subprocess.run([sys.executable, "-m", "xwpy", *args], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()[0]

    assert whoami("whoami") == "alice"
    assert whoami("--site", str(grid.cfg.dir), "whoami") == "admin"
    assert whoami("whoami", "--site", str(grid.cfg.dir)) == "admin"
    assert whoami("--site", str(grid.cfg.dir), "--token", alice, "whoami") == "alice"  # typed: it wins


def test_a_second_coordinator_on_the_same_site_refuses_to_start_and_leaves_the_first_alone(grid):
    """Two coordinators on one catalog would each schedule their own copy of every job; the second
    used to print a traceback (its port taken) and delete the first's run file on its way out."""
    first = grid.start_coordinator()
    run_file = grid.cfg.run_file.read_text()
    r = subprocess.run([sys.executable, "-m", "xwpy", "coordinator", "--site", str(grid.cfg.dir)],
                       capture_output=True, text=True, env=child_env(), timeout=120)
    assert "is already served by another coordinator" in one_line(r)
    assert f"pid {first.popen.pid}" in r.stderr
    assert first.alive() and grid.cfg.run_file.read_text() == run_file
    assert grid.client().hosts() == []  # the first still serves
