"""A vanity search found by the grid's workers, end to end, through the CLI a person would use."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import base58
import coincurve
import pytest

from tests.harness import wait_for
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow


def address_of(private_key: int, compressed: bool = True) -> str:
    """Independent of the app's own code: coincurve, hashlib, base58."""
    pub = coincurve.PrivateKey(private_key.to_bytes(32, "big")).public_key.format(compressed=compressed)
    h160 = hashlib.new("ripemd160", hashlib.sha256(pub).digest()).digest()
    return base58.b58encode_check(b"\x00" + h160).decode()


def key_of_wif(wif: str) -> int:
    raw = base58.b58decode_check(wif)
    return int.from_bytes(raw[1:33], "big")


def xwpy(grid, token, *args, timeout=180):
    cmd = [sys.executable, "-m", "xwpy", "--url", grid.url, "--token", token, "--ca", str(grid.cfg.ca_cert), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=timeout, cwd=grid.root)


def field(output: str, name: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(name + ": "))


@pytest.fixture
def vanity_grid(grid):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.user("alice")
    grid.start_worker("w1", vol)
    grid.start_worker("w2", grid.user("vol2", "worker"))
    wait_for(lambda: len(grid.client().hosts()) == 2, 30, "two workers")
    return grid, alice


def test_grid_finds_an_address_and_its_key(vanity_grid):
    grid, alice = vanity_grid
    r = xwpy(grid, alice, "vanity", "search", "1Ab", "--rate", "50000", "--unit-seconds", "4")
    assert r.returncode == 0, r.stderr
    address, wif = field(r.stdout, "address"), field(r.stdout, "private key (WIF)")
    assert address.startswith("1Ab")
    assert address_of(key_of_wif(wif)) == address
    jobs = list(grid.client(alice).jobs())
    assert jobs and all(j["app"] == "vanitygen" for j in jobs)
    assert any(j["status"] == "COMPLETED" for j in jobs)


def test_split_key_the_grid_never_learns_the_key(vanity_grid, tmp_path):
    grid, alice = vanity_grid
    secret = tmp_path / "secret"
    r = xwpy(grid, alice, "vanity", "keygen", "--out", str(secret))
    assert r.returncode == 0, r.stderr
    pub = r.stdout.strip()
    out = tmp_path / "match.json"
    r = xwpy(grid, alice, "vanity", "search", "1xw", "--split-key", pub, "--rate", "50000", "--unit-seconds", "4",
             "--out", str(out))
    assert r.returncode == 0, r.stderr
    address = field(r.stdout, "address")
    assert address.startswith("1xw") and "private key" not in r.stdout
    # Nothing the grid stored spends the address: every job argument and result lacks q.
    q = int(secret.read_text(), 16)
    client = grid.client(alice)
    for job in client.jobs():
        detail = client.job(job["id"])
        assert f"{q:064x}" not in str(detail)
    r = xwpy(grid, alice, "vanity", "combine", "--secret", str(secret), "--result", str(out))
    assert r.returncode == 0, r.stderr
    assert field(r.stdout, "address") == address
    assert address_of(key_of_wif(field(r.stdout, "private key (WIF)"))) == address


def test_bad_prefix_is_refused_before_anything_is_submitted(vanity_grid):
    grid, alice = vanity_grid
    r = xwpy(grid, alice, "vanity", "search", "1Oops")
    assert r.returncode != 0 and "O" in r.stderr and "Traceback" not in r.stderr
    assert list(grid.client(alice).jobs()) == []


def test_a_plain_user_sizes_its_search_from_the_grid_within_its_job_quota(grid):
    """alice has no host of her own: the units in flight come from what the grid can run for her
    (every live host's slots: it used to be 2, from her own hosts), and stay within her job
    quota ([limits] max_jobs_per_user: it used to submit 2 and be refused, 403 over_quota)."""
    grid.configure("limits", max_jobs_per_user=1)
    grid.start_coordinator()
    grid.start_worker("w1", grid.user("vol", "worker"))
    grid.start_worker("w2", grid.user("vol2", "worker"))
    wait_for(lambda: len(grid.client().hosts()) == 2, 30, "two workers")
    alice = grid.user("alice")
    me = grid.client(alice).me()
    slots = sum(h["cpus"] for h in grid.client().hosts())
    assert me["slots"] == slots >= 2 and me["max_jobs"] == 1 and me["jobs_in_progress"] == 0
    r = xwpy(grid, alice, "vanity", "search", "1Ab", "--rate", "50000", "--unit-seconds", "4")
    assert r.returncode == 0, r.stderr
    assert "1 unit in flight (your job quota: 1, 0 in progress)" in r.stderr, r.stderr
    assert field(r.stdout, "address").startswith("1Ab")
    # An admin has no quota: twice the grid's slots.
    r = xwpy(grid, grid.admin_token, "vanity", "search", "1A", "--rate", "50000", "--unit-seconds", "4")
    assert r.returncode == 0, r.stderr
    assert f"{2 * slots} units in flight (twice the grid's {slots} live job slots)" in r.stderr, r.stderr
