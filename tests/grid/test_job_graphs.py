"""Job graphs against a real coordinator and workers: a three-level graph of 100 jobs runs in
dependency order (from the replicas' assignment times) with each child reading its parents'
certified stdout; a failing parent cancels exactly its descendants, which say why; cycles and
unknown or foreign parents are refused at submit; a coordinator SIGKILLed mid-graph loses and
duplicates nothing."""

from __future__ import annotations

import signal

import pytest

from tests.grid.conftest import stdout_of
from tests.harness import wait_for
from xwpy.client.api import ClientError
from xwpy.client.commands.jobs import graph_line, why_text

pytestmark = pytest.mark.slow

# Prints its name and, in <...>, what its inputs in0, in1 (its parents' stdout) hold.
STEP = ["{python}", "-c",
        "import sys, glob, time; time.sleep(float(sys.argv[2]));"
        "print(sys.argv[1] + '<' + '+'.join(open(f).read().strip() for f in sorted(glob.glob('in*'))) + '>')",
        "{args}"]
FAIL = ["{python}", "-c", "import sys; sys.exit(3)", "{args}"]


def _site(grid, slots=2, workers=2):
    grid.coordinator = grid.start_coordinator()
    token = grid.user("alice")
    alice = grid.client(token)
    alice.register_app(name="step", command=STEP, replication=1, quorum=1)
    alice.register_app(name="fail", command=FAIL, replication=1, quorum=1)
    for w in range(workers):
        grid.start_worker(f"w{w}", grid.user(f"vol{w}", "worker"), slots=slots)
    return alice


def _three_levels(pause="0"):
    """10 roots, 30 middle jobs (after one root each), 60 leaves (after two middle jobs each):
    listed leaves first, so that keys name jobs further down the list too."""
    roots = [{"key": f"a{i}", "app": "step", "args": [f"a{i}", pause]} for i in range(10)]
    middle = [{"key": f"b{i}", "app": "step", "args": [f"b{i}", pause], "after": [f"a{i % 10}"],
               "results": [{"name": "in0", "job": f"a{i % 10}"}]} for i in range(30)]
    leaves = [{"key": f"c{i}", "app": "step", "args": [f"c{i}", pause],
               "results": [{"name": "in0", "job": f"b{i % 30}"}, {"name": "in1", "job": f"b{(i + 7) % 30}"}]}
              for i in range(60)]
    return leaves + middle + roots


def _expected(key: str) -> str:
    level, i = key[0], int(key[1:])
    if level == "a":
        return f"{key}<>"
    if level == "b":
        return f"{key}<{_expected(f'a{i % 10}')}>"
    return f"{key}<{_expected(f'b{i % 30}')}+{_expected(f'b{(i + 7) % 30}')}>"


def _check_order(alice, specs, ids):
    by_key = {s["key"]: jid for s, jid in zip(specs, ids)}
    jobs = {jid: alice.job(jid) for jid in ids}
    for s, jid in zip(specs, ids):
        parents = {by_key[r["job"]] for r in s.get("results", ())} | {by_key[k] for k in s.get("after", ())}
        job = jobs[jid]
        assert sorted(job["after"]) == sorted(parents)
        for p in parents:  # no replica of a child before its parent was certified
            assert all(r["assigned_at"] >= jobs[p]["finished_at"] for r in job["replicas"]), (jid, p)
    return jobs, by_key


def test_a_three_level_graph_of_100_jobs_runs_in_dependency_order(grid, tmp_path):
    alice = _site(grid)
    specs = _three_levels()
    ids = alice.submit(specs, batch="g1")
    assert len(ids) == 100
    finals = grid.wait_final(alice, ids, timeout=300)
    assert {j["status"] for j in finals.values()} == {"COMPLETED"}
    jobs, by_key = _check_order(alice, specs, ids)
    for key in ("a3", "b13", "c0", "c59"):
        assert stdout_of(alice, by_key[key], tmp_path).strip() == _expected(key)
    line = graph_line(list(alice.jobs(batch="g1")))
    assert line.startswith("graph: 100/100 certified (level 1: 10/10, level 2: 30/30, level 3: 60/60)")


def test_a_failing_parent_cancels_exactly_its_descendants(grid):
    alice = _site(grid, workers=1)
    specs = [
        {"key": "ok", "app": "step", "args": ["ok", "0"]},
        {"key": "bad", "app": "fail", "args": ["x"], "max_errors": 1},
        {"key": "ok1", "app": "step", "args": ["ok1", "0"], "results": [{"name": "in0", "job": "ok"}]},
        {"key": "ok2", "app": "step", "args": ["ok2", "0"], "after": ["ok1"]},
        {"key": "bad1", "app": "step", "args": ["bad1", "0"], "results": [{"name": "in0", "job": "bad"}]},
        {"key": "bad2", "app": "step", "args": ["bad2", "0"], "after": ["bad"]},
        {"key": "bad11", "app": "step", "args": ["bad11", "0"], "after": ["bad1"]},
        {"key": "both", "app": "step", "args": ["both", "0"], "after": ["ok", "bad"]},
    ]
    ids = alice.submit(specs, batch="g2")
    by_key = {s["key"]: jid for s, jid in zip(specs, ids)}
    finals = grid.wait_final(alice, ids, timeout=120)
    status = {s["key"]: finals[by_key[s["key"]]]["status"] for s in specs}
    assert status == {"ok": "COMPLETED", "bad": "ERROR", "ok1": "COMPLETED", "ok2": "COMPLETED",
                      "bad1": "CANCELLED", "bad2": "CANCELLED", "bad11": "CANCELLED", "both": "CANCELLED"}
    for key in ("bad1", "bad2", "bad11", "both"):
        assert not alice.job(by_key[key])["replicas"]  # never ran
    assert why_text(alice.job(by_key["bad1"])) == (
        f"job {by_key['bad1']} was cancelled: job {by_key['bad']}, which it runs after, ended in ERROR")
    assert why_text(alice.job(by_key["bad11"])) == (
        f"job {by_key['bad11']} was cancelled: job {by_key['bad1']}, which it runs after, was cancelled")


def test_cycles_and_unknown_or_foreign_parents_are_refused_at_submit(grid):
    alice = _site(grid, workers=0)
    bob = grid.client(grid.user("bob"))
    bob.register_app(name="bstep", command=STEP, replication=1, quorum=1)
    [theirs] = bob.submit([{"app": "bstep", "args": ["x", "0"]}])
    cases = [
        ([{"key": "p", "app": "step", "args": ["p", "0"], "after": ["q"]},
          {"key": "q", "app": "step", "args": ["q", "0"], "after": ["p"]}], "jobs[0].after", "cycle: p -> q -> p"),
        ([{"key": "p", "app": "step", "args": ["p", "0"], "after": ["p"]}], "jobs[0].after", "cycle: p -> p"),
        ([{"app": "step", "args": ["p", "0"], "after": ["nokey"]}], "jobs[0].after[0]", "no job with the key"),
        ([{"app": "step", "args": ["p", "0"], "after": ["999999"]}], "jobs[0].after[0]", "no job 999999 of yours"),
        ([{"app": "step", "args": ["p", "0"], "results": [{"name": "in0", "job": str(theirs)}]}],
         "jobs[0].inputs", f"input in0=@{theirs}:stdout: no job {theirs} of yours"),
        ([{"app": "step", "args": ["p", "0"], "results": [{"name": "in0", "job": "nokey"}]}],
         "jobs[0].inputs", "input in0=@nokey:stdout: no job with the key 'nokey' in this submission"),
    ]
    for specs, field, text in cases:
        with pytest.raises(ClientError) as e:
            alice.submit(specs)
        assert e.value.status == 400 and e.value.field == field and text in str(e.value), str(e.value)
    assert not list(alice.jobs())


@pytest.mark.parametrize("grid", ["sqlite", "postgres"], indirect=True)
def test_the_coordinator_killed_mid_graph_loses_and_duplicates_nothing(grid, tmp_path):
    alice = _site(grid)
    specs = _three_levels(pause="0.3")
    ids = alice.submit(specs, batch="g3")
    by_key = {s["key"]: jid for s, jid in zip(specs, ids)}
    # Killed once some middle jobs are certified and leaves are still held.
    wait_for(lambda: alice.job(by_key["b0"])["status"] == "COMPLETED"
             or alice.job(by_key["b1"])["status"] == "COMPLETED", 120, "a middle job certified")
    grid.coordinator.stop(signal.SIGKILL)
    grid.start_coordinator()
    alice.close()
    finals = grid.wait_final(alice, ids, timeout=300)
    assert {j["status"] for j in finals.values()} == {"COMPLETED"}
    assert sorted(j["id"] for j in alice.jobs()) == sorted(ids)  # nothing lost, nothing new
    jobs, _ = _check_order(alice, specs, ids)
    for jid, job in jobs.items():  # one certified result each, never certified twice
        assert sum(1 for r in job["replicas"] if r["validation"] == "VALID") == 1, job
    for key in ("a0", "b0", "c5"):
        assert stdout_of(alice, by_key[key], tmp_path).strip() == _expected(key)


def test_the_readme_graph_and_python_examples_run_as_written(grid, tmp_path):
    import re
    import shutil
    import subprocess
    import sys

    from tests.grid.test_newcomer import REPO, volunteers, xwpy_env

    grid.start_coordinator()
    token = grid.user("alice")
    volunteers(grid, 3)
    cwd = tmp_path / "alice"
    (cwd / "xwpy" / "apps").mkdir(parents=True)
    shutil.copytree(REPO / "xwpy" / "apps" / "primes", cwd / "xwpy" / "apps" / "primes")
    env = xwpy_env(grid, token)
    session = re.search(r"A scientist \(.*?```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    for line in session.splitlines():  # the session's apps, registered as it does
        if line.startswith("xwpy app register"):
            assert subprocess.run(line, shell=True, env=env, cwd=cwd, timeout=120).returncode == 0
    block = re.search(r"\*\*Job graphs\.\*\*.*?```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    r = subprocess.run(["bash", "-e", "-c", block], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "graph: 3/3 certified (level 1: 2/2, level 2: 1/1)" in r.stdout
    example = re.search(r"## Job graphs.*?```python\n(.*?)```", (REPO / "docs" / "python-api.md").read_text(),
                        re.S).group(1)
    r = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"[0-9a-f]{64}\n", r.stdout), r.stdout  # the checksum, not the file's name


def test_a_file_a_certified_result_lacks_is_refused_at_submit(grid):
    """`-i in0=@ID:FILE` naming a file that job ID's certified result does not have is refused at
    submit (400, one line, exit 5), not found missing when the job runs; one it has is taken."""
    import subprocess
    import sys

    from xwpy.client.exits import Exit
    from xwpy.localgrid import child_env

    grid.coordinator = grid.start_coordinator()
    token = grid.user("alice")
    alice = grid.client(token)
    alice.register_app(name="step", command=STEP, replication=1, quorum=1)
    grid.start_worker("w0", grid.user("vol0", "worker"), slots=1)
    [parent] = alice.submit([{"app": "step", "args": ["p", "0"]}])
    assert grid.wait_final(alice, [parent], timeout=120)[parent]["status"] == "COMPLETED"
    with pytest.raises(ClientError) as e:
        alice.submit([{"app": "step", "args": ["c", "0"],
                       "results": [{"name": "in0", "job": str(parent), "member": "out.txt"}]}])
    assert e.value.status == 400 and e.value.field == "jobs[0].inputs"
    assert f"input in0=@{parent}:out.txt: the certified result of job {parent} has no file 'out.txt'" in str(e.value)
    base = [sys.executable, "-m", "xwpy", "--url", grid.url, "--ca", str(grid.cfg.ca_cert)]
    r = subprocess.run([*base, "--token", token, "submit", "step", "-i", f"in0=@{parent}:out.txt", "--", "c", "0"],
                       capture_output=True, text=True, env=child_env(), timeout=120)
    assert r.returncode == Exit.REFUSED, r.stderr
    assert r.stderr.count("\n") == 1 and "has no file 'out.txt'" in r.stderr, r.stderr
    assert not [j for j in alice.jobs() if j["id"] != parent]  # nothing submitted
    r = subprocess.run([*base, "--token", token, "submit", "step", "-i", f"in0=@{parent}", "--", "c", "0"],
                       capture_output=True, text=True, env=child_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    [child] = [j["id"] for j in alice.jobs() if j["id"] != parent]
    assert grid.wait_final(alice, [child], timeout=120)[child]["status"] == "COMPLETED"
