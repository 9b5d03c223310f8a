"""The scientist's CLI against a real grid, as a person types it: happy path and mistakes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.harness import wait_for
from xwpy.client.exits import Exit
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow


def run(grid, token, *args, check=True, timeout=120):
    cmd = [sys.executable, "-m", "xwpy", "--url", grid.url, "--token", token, "--ca", str(grid.cfg.ca_cert), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=timeout, cwd=grid.root)
    assert "Traceback" not in r.stderr, r.stderr
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def cli_grid(grid):
    grid.start_coordinator()
    alice = run(grid, grid.admin_token, "users", "add", "alice", "--json")
    token = json.loads(alice.stdout)["token"]
    vol = json.loads(run(grid, grid.admin_token, "users", "add", "vol", "--role", "worker", "--json").stdout)["token"]
    for name in ("w1", "w2"):
        grid.start_worker(name, vol)
    wait_for(lambda: len(grid.client().hosts()) == 2, 30, "two workers")
    return grid, token


def test_a_scientists_session(cli_grid, tmp_path):
    grid, alice = cli_grid
    bundle = tmp_path / "wc"
    bundle.mkdir()
    (bundle / "wc.py").write_text("import sys\nprint(len(open(sys.argv[1]).read().split()), sys.argv[2])\n")
    run(grid, alice, "app", "register", "wc", "--bundle", str(bundle), "--replication", "2", "--quorum", "2",
        "--", "{python}", "wc.py", "{args}")
    apps = json.loads(run(grid, alice, "app", "list", "--json").stdout)
    assert [a["name"] for a in apps] == ["wc"]

    text = tmp_path / "words.txt"
    text.write_text("one two three four\n")
    # Shared with the public (private data would run just as well: any volunteer's host may read a job's inputs).
    sha = run(grid, alice, "data", "put", str(text), "--access", "public").stdout.strip()
    assert len(sha) == 64
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps({"app": "wc", "args": ["words.txt", f"#{i}"], "inputs": {"words.txt": sha}})
                              for i in range(5)) + "\n")
    ids = json.loads(run(grid, alice, "submit", "--file", str(jobs), "--batch", "b1", "--json").stdout)["ids"]
    assert len(ids) == 5
    [one] = json.loads(run(grid, alice, "submit", "wc", "words.txt", "#single", "-i", f"words.txt={sha}",
                           "--json").stdout)["ids"]

    watched = run(grid, alice, "status", "--batch", "b1", "--watch", "--timeout", "90")
    assert "COMPLETED 5" in watched.stdout
    listing = json.loads(run(grid, alice, "status", "--batch", "b1", "--json").stdout)
    assert sorted(j["id"] for j in listing) == sorted(ids) and {j["status"] for j in listing} == {"COMPLETED"}
    assert run(grid, alice, "result", str(ids[2])).stdout == "4 #2\n"
    out = tmp_path / "r.tar"
    run(grid, alice, "result", str(ids[0]), "-o", str(out))
    assert out.stat().st_size > 0
    extracted = tmp_path / "x"
    run(grid, alice, "result", str(ids[1]), "-x", str(extracted))
    assert (extracted / "stdout").read_text() == "4 #1\n"
    wait_for(lambda: run(grid, alice, "status", str(one), "--json").stdout.count('"COMPLETED"'), 60, "the single job")
    hosts = json.loads(run(grid, alice, "hosts", "--json").stdout)
    assert hosts == []  # alice owns no host; the volunteer does
    listed = json.loads(run(grid, grid.admin_token, "hosts", "--json").stdout)
    assert len(listed) == 2 and all(h["alive"] for h in listed)  # both workers heartbeat


def test_cancel_a_batch(cli_grid):
    grid, alice = cli_grid
    run(grid, alice, "app", "register", "nap", "--replication", "1", "--quorum", "1", "--",
        "{python}", "-c", "import time; time.sleep(60)")
    run(grid, alice, "submit", "nap", "--batch", "naps")
    run(grid, alice, "submit", "nap", "--batch", "naps")
    assert run(grid, alice, "cancel", "--batch", "naps").stdout.strip() == "cancelled 2 jobs"
    listing = json.loads(run(grid, alice, "status", "--batch", "naps", "--json").stdout)
    assert {j["status"] for j in listing} == {"CANCELLED"}


@pytest.mark.parametrize(
    "args, needle, code",
    [
        (("submit", "nosuchapp"), "jobs[0].app", Exit.REFUSED),
        (("submit",), "give APP", Exit.USAGE),
        (("submit", "x", "-i", "broken"), "NAME=FILE|SHA256", Exit.USAGE),
        (("submit", "x", "-i", "f=/no/such/file"), "neither a sha256 nor a file", Exit.FAILED),
        (("status", "424242"), "not_found", Exit.REFUSED),
        (("status", "--nosuch"), "No such option", Exit.USAGE),
        (("result", "424242"), "not_found", Exit.REFUSED),
        (("cancel",), "give job ids or --batch", Exit.USAGE),
        (("data", "get", "0" * 64, "out"), "not_found", Exit.REFUSED),
        (("app", "register", "bad name!", "--", "true"), "name", Exit.REFUSED),
        (("app", "register", "sq", "--wall", "2 days", "--", "true"), "not a duration", Exit.USAGE),
        (("users", "add", "eve"), "admin only", Exit.REFUSED),
    ],
)
def test_mistakes_are_one_line_with_the_exit_status_of_their_kind(cli_grid, args, needle, code):
    grid, alice = cli_grid
    r = run(grid, alice, *args, check=False)
    assert r.returncode == code, r.stderr
    assert needle in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xwpy: error: "), r.stderr


def test_a_coordinator_that_is_not_there(cli_grid):
    grid, alice = cli_grid
    with socket.socket() as s:  # a port nobody listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{s.getsockname()[1]}"
        cmd = [sys.executable, "-m", "xwpy", "--url", url, "--token", alice, "--ca", str(grid.cfg.ca_cert), "status"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == Exit.UNREACHABLE and r.stderr.startswith(f"xwpy: error: cannot reach coordinator at {url}"), r


def test_wrong_ca_or_token(cli_grid, tmp_path):
    grid, alice = cli_grid
    r = run(grid, "xwu_forged", "status", check=False)
    assert r.returncode == Exit.REFUSED and "invalid token" in r.stderr
    from xwpy import pki

    other_ca, _ = pki.make_ca("elsewhere")
    (tmp_path / "other.pem").write_bytes(other_ca)
    cmd = [sys.executable, "-m", "xwpy", "--url", grid.url, "--token", alice, "--ca", str(tmp_path / "other.pem"), "status"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == Exit.UNREACHABLE and "certificate" in r.stderr and "Traceback" not in r.stderr


def test_a_sweep_of_arguments_and_inputs(cli_grid, tmp_path):
    grid, alice = cli_grid
    run(grid, alice, "app", "register", "echo", "--replication", "1", "--quorum", "1", "--",
        "{python}", "-c", "import sys; print(*sys.argv[1:], open('data').read().strip())", "{args}")
    for c in "xy":
        (tmp_path / f"{c}.txt").write_text(f"file-{c}\n")
    (tmp_path / "files").write_text(f"{tmp_path / 'x.txt'}\n{tmp_path / 'y.txt'}\n")
    out = json.loads(run(grid, alice, "submit", "echo", "--sweep", "n=1..3", "--sweep", f"f=@{tmp_path / 'files'}",
                         "-i", "data={f}", "--json", "--", "n={n}").stdout)
    assert len(out["ids"]) == 6 and out["batch"].startswith("sweep-")
    run(grid, alice, "status", "--batch", out["batch"], "--watch", "--timeout", "120")
    outputs = [run(grid, alice, "result", str(i)).stdout for i in out["ids"]]
    assert outputs == [f"n={n} file-{c}\n" for n in (1, 2, 3) for c in "xy"]  # in the order of the product
    # A sweep whose name appears nowhere is a usage error, and nothing is submitted.
    r = run(grid, alice, "submit", "echo", "--sweep", "n=1..3", "--", "constant", check=False)
    assert r.returncode == Exit.USAGE and "{n} appears in no argument" in r.stderr, r.stderr
    assert len(json.loads(run(grid, alice, "status", "--json").stdout)) == 6
