"""Tolerant validation against a real coordinator and workers: a floating-point app whose replicas
differ in the last digits (hosts adding noise far below rtol) is certified with the numeric
comparator and never bitwise; a liar beyond rtol is outvoted."""

from __future__ import annotations

import json
import math

import pytest

from tests.grid.conftest import stdout_of
from tests.harness import liar, wait_for

pytestmark = pytest.mark.slow

FP = ["{python}", "-c", "import json, math, sys; n = int(sys.argv[1]); "
      "print(json.dumps({'n': n, 'x': math.sqrt(n) * math.pi, 'y': [math.exp(-n), 1.5]}))", "{args}"]
JOBS = 6


def _truth(n: int) -> dict:
    return {"n": n, "x": math.sqrt(n) * math.pi, "y": [math.exp(-n), 1.5]}


def _close(a: dict, b: dict, rtol: float) -> bool:
    xs = [a["x"], *a["y"]]
    ys = [b["x"], *b["y"]]
    return a["n"] == b["n"] and all(abs(p - q) <= rtol * max(abs(p), abs(q)) for p, q in zip(xs, ys))


def _site(grid, modes):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="fp", command=FP, replication=3, quorum=2, comparator="numeric", rtol=1e-9)
    alice.register_app(name="fpbit", command=FP, replication=2, quorum=2)
    for i, mode in enumerate(modes):
        grid.start_worker(f"w{i}", grid.user(f"vol{i}", "worker"), slots=2, launcher=liar(mode))
    return alice


def test_noise_below_rtol_is_certified_with_numeric_and_never_bitwise(grid, tmp_path):
    alice = _site(grid, ["noise", "noise", "noise"])
    numeric = alice.submit([{"app": "fp", "args": [str(n)]} for n in range(1, JOBS + 1)])
    bitwise = alice.submit([{"app": "fpbit", "args": [str(n)], "max_replicas": 3} for n in range(1, JOBS + 1)])
    finals = grid.wait_final(alice, numeric + bitwise, timeout=240)
    assert {finals[j]["status"] for j in numeric} == {"COMPLETED"}
    assert {finals[j]["status"] for j in bitwise} == {"ERROR"}  # three results, all different
    for n, jid in enumerate(numeric, 1):
        job = alice.job(jid)
        digests = {r["result_sha256"] for r in job["replicas"] if r["validation"] == "VALID"}
        assert len(digests) >= 2  # not identical, and yet agreeing
        assert job["result_sha256"] in digests
        assert _close(json.loads(stdout_of(alice, jid, tmp_path)), _truth(n), 1e-9)
    for jid in bitwise:
        assert "no quorum" in alice.job(jid)["error"]


def test_a_liar_beyond_rtol_is_outvoted(grid, tmp_path):
    # The liar and one honest host first: every job's two results disagree, and it waits for a
    # third host; the second honest host then outvotes the liar on each.
    alice = _site(grid, ["beyond", "noise"])
    alice.register_app(name="fp2", command=FP, replication=2, quorum=2, comparator="numeric", rtol=1e-9)
    ids = alice.submit([{"app": "fp2", "args": [str(n)]} for n in range(1, JOBS + 1)])
    wait_for(lambda: all(sum(r["status"] == "DONE" for r in alice.job(j)["replicas"]) == 2 for j in ids), 120,
             "two results of each job")
    assert {alice.job(j)["status"] for j in ids} == {"RUNNING"}  # they disagree: no quorum yet
    grid.start_worker("w2", grid.user("vol2", "worker"), slots=2, launcher=liar("noise"))
    finals = grid.wait_final(alice, ids, timeout=240)
    assert {finals[j]["status"] for j in ids} == {"COMPLETED"}
    liar_host = {h["name"]: h["id"] for h in grid.client().hosts()}["w0"]
    for n, jid in enumerate(ids, 1):
        job = alice.job(jid)
        assert _close(json.loads(stdout_of(alice, jid, tmp_path)), _truth(n), 1e-9)
        validation = {r["host_id"]: r["validation"] for r in job["replicas"] if r["status"] == "DONE"}
        assert len(validation) == 3 and validation.pop(liar_host) == "INVALID"
        assert set(validation.values()) == {"VALID"}


def test_the_readme_example_runs_as_written(grid, tmp_path):
    import re
    import subprocess

    from tests.grid.test_newcomer import REPO, volunteers, xwpy_env

    grid.start_coordinator()
    token = grid.user("alice")
    volunteers(grid, 3)
    block = re.search(r"\*\*Tolerant validation\.\*\*.*?```sh\n(.*?)```", (REPO / "README.md").read_text(),
                      re.S).group(1)
    r = subprocess.run(["bash", "-e", "-c", block], capture_output=True, text=True, env=xwpy_env(grid, token),
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "COMPLETED 1" in r.stdout
    [job] = grid.client(token).jobs(batch="pi2")
    assert stdout_of(grid.client(token), job["id"], tmp_path) == f"{math.pi * 2}\n"
    [app] = [a for a in grid.client(token).apps() if a["name"] == "pi"]
    assert (app["comparator"], app["rtol"], app["homogeneous"]) == ("numeric", 1e-9, True)
