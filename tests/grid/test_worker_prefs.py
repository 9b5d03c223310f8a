"""A volunteer's preferences file, end to end: `xwpy worker prefs`, and workers that keep to their
computing windows, their battery rule and their shares of the machine, and say so to the site."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import psutil
import pytest

from tests.harness import wait_for
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow

# Unique to this run: other runs on the machine (other checkouts) have jobs of this test too.
MARK = f"xwpy-prefs-test-job-{uuid.uuid4().hex[:12]}"
# Needs 3 s of CPU: a suspended job makes no progress, whatever the clock says.
BUSY = ["{python}", "-c", f"import time  # {MARK}\nwhile time.process_time() < 3: pass\nprint('done')"]


def xwpy(*args, env=None):
    r = subprocess.run([sys.executable, "-m", "xwpy", *args], capture_output=True, text=True,
                       env={**child_env(), **(env or {})}, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def job_process():
    for p in psutil.process_iter(["cmdline"]):
        if any(MARK in part for part in (p.info["cmdline"] or [])):
            return p
    return None


def test_worker_prefs_shows_each_preference_and_its_source(tmp_path):
    prefs = tmp_path / "prefs.toml"
    prefs.write_text('[compute]\ncpu_percent = 50\ncores = 1\n[disk]\nbudget = "1G"\n')
    r = xwpy("worker", "--no-battery", "prefs", "--prefs", str(prefs), "--json")
    assert r.returncode == 0, r.stderr
    shown = {p["key"]: (p["value"], p["source"]) for p in json.loads(r.stdout)["prefs"]}
    assert shown["compute.cpu_percent"] == ("50%", f"file {prefs}")
    assert shown["disk.budget"] == ("1G", f"file {prefs}")
    assert shown["compute.on_battery"] == ("no (suspend)", "command line (--no-battery)")
    assert shown["compute.windows"] == ("always", "default")
    # The command line beats the file, key by key; the table says where each value comes from.
    r = xwpy("worker", "--prefs", str(prefs), "--cores", "2", "prefs")
    assert r.returncode == 0, r.stderr
    [cores] = [ln for ln in r.stdout.splitlines() if ln.startswith("compute.cores ")]
    assert cores.split() == ["compute.cores", "2", "command", "line", "(--cores)"]
    assert "lends " in r.stdout.splitlines()[-1]


def test_bad_preferences_are_one_line_naming_the_key_and_nothing_starts(grid, tmp_path):
    cases = {
        '[compute]\nwindows = ["18:00-18:00"]': "compute.windows[0]: '18:00-18:00' is empty",
        '[compute]\nwindows = ["8:00-25:00"]': "compute.windows[0]: '8:00-25:00': 25:00 is not a time of day",
        '[disk]\nbudget = "1M"': "disk.budget: '1M' is less than 16M",
        '[compute]\ncpu_percent = 120': "compute.cpu_percent: 120 is not a percentage",
        '[compute]\ncores = 4096': "compute.cores 4096: this machine has",
        '[transfer]\nupload_limit = "fast"': "transfer.upload_limit: 'fast' is not a size",
        '[compute]\nbattery = false': "compute.battery: unknown key",
        '[disk]\nbudget = "1000T"': "disk.budget 1000T: the file system of the worker's state holds",
        '[compute': "not valid TOML",
    }
    prefs = tmp_path / "prefs.toml"
    for text, why in cases.items():
        prefs.write_text(text)
        for args in (["worker", "--state", str(tmp_path / "state"), "prefs", "--prefs", str(prefs)],
                     ["worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert), "--state",
                      str(tmp_path / "state"), "--prefs", str(prefs)]):
            r = xwpy(*args, env={"XWPY_TOKEN": "x"})
            lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning:")]
            assert r.returncode == 1 and lines == [f"xwpy: error: {prefs}: {lines[0].split(': ', 3)[3]}"], (text, r.stderr)
            assert why in lines[0], (text, lines)
    assert not (tmp_path / "state" / "host.json").exists()


def window_around(now: datetime, start_in: timedelta, length: timedelta) -> str:
    return f"{(now + start_in):%H:%M}-{(now + start_in + length):%H:%M}"


def test_a_worker_outside_its_computing_window_takes_no_work_and_says_why(grid, tmp_path):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="busy", command=BUSY, replication=1, quorum=1)
    vol = grid.user("vol", "worker")
    now = datetime.now()
    closed, opened = tmp_path / "evenings.toml", tmp_path / "now.toml"
    # Opens two hours from now (this test ends long before) and closes an hour later.
    closed.write_text(f'[compute]\nwindows = ["{window_around(now, timedelta(hours=2), timedelta(hours=1))}"]\n')
    grid.start_worker("closed", vol, "--prefs", str(closed))
    host = wait_for(lambda: [h for h in grid.client().hosts() if h["suspended"]], 60, "the host shown suspended",
                    interval=0.5)[0]
    assert host["suspended"] == f"outside its computing window (opens at {now + timedelta(hours=2):%H:%M})"
    [jid] = alice.submit([{"app": "busy"}])
    why = wait_for(lambda: alice.job(jid)["why"], 30, "the job to say why it waits")
    assert why == "queued: every host alive is suspended (1 host suspended: outside its computing window)", why
    site = ("--url", grid.url, "--token", grid.admin_token, "--ca", str(grid.cfg.ca_cert))
    assert f"waiting: {why}" in xwpy(*site, "status", str(jid)).stdout
    r = xwpy(*site, "hosts")
    assert "suspended: outside its computing window (opens at" in r.stdout, r.stdout
    # A worker whose window is open (it began an hour ago) runs it; the first never took it.
    opened.write_text(f'[compute]\nwindows = ["{window_around(now, -timedelta(hours=1), timedelta(hours=3))}"]\n')
    grid.start_worker("open", vol, "--prefs", str(opened))
    job = grid.wait_final(alice, [jid], timeout=90)[jid]
    assert job["status"] == "COMPLETED"
    names = {h["id"]: h["name"] for h in grid.client().hosts()}
    assert [names[r["host_id"]] for r in alice.job(jid)["replicas"]] == ["open"]


def test_a_worker_suspends_its_jobs_on_battery_and_resumes_on_mains(grid, tmp_path):
    supplies = tmp_path / "power_supply"
    for name, files in {"AC": {"type": "Mains", "online": "1"}, "BAT0": {"type": "Battery", "status": "Full"}}.items():
        (supplies / name).mkdir(parents=True)
        for k, v in files.items():
            (supplies / name / k).write_text(v + "\n")
    prefs = tmp_path / "prefs.toml"
    prefs.write_text("[compute]\non_battery = false\n")
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="busy", command=BUSY, replication=1, quorum=1)
    worker = grid.spawn("laptop", "worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert),
                        "--state", str(grid.work_root / "laptop"), "--wait", "2", "--no-idle-check",
                        "--idle-period", "0.2", "--prefs", str(prefs),
                        env={"XWPY_TOKEN": grid.user("vol", "worker"), "XWPY_POWER_SUPPLY": str(supplies)})
    [jid] = alice.submit([{"app": "busy"}])
    proc = wait_for(job_process, 60, "the job to start")
    # Unplugged.
    (supplies / "AC" / "online").write_text("0\n")
    (supplies / "BAT0" / "status").write_text("Discharging\n")
    wait_for(lambda: proc.status() == psutil.STATUS_STOPPED, 30, "the job to be suspended")
    cpu_while_suspended = proc.cpu_times().user
    wait_for(lambda: grid.client().hosts()[0]["suspended"] == "on battery", 30, "the host shown on battery",
             interval=0.5)
    assert "suspending jobs: on battery" in worker.output()
    assert alice.job(jid)["status"] == "RUNNING"
    # Plugged in again.
    (supplies / "AC" / "online").write_text("1\n")
    wait_for(lambda: proc.status() != psutil.STATUS_STOPPED, 30, "the job to be resumed", interval=0.2)
    job = grid.wait_final(alice, [jid], timeout=90)[jid]
    assert job["status"] == "COMPLETED"
    assert cpu_while_suspended < 3
    assert "resuming jobs (were suspended: on battery)" in worker.output()


def test_a_worker_lends_its_shares_of_the_machine(grid, tmp_path):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    cpus, memory = os.cpu_count() or 1, psutil.virtual_memory().total
    prefs = tmp_path / "prefs.toml"
    prefs.write_text("[compute]\ncpu_percent = 50\nmemory_percent = 25\n")
    grid.start_worker("half", vol, "--prefs", str(prefs))
    # The command line's --cores combines with the file's share: the smaller wins.
    grid.start_worker("one", vol, "--prefs", str(prefs), "--cores", "1", "--memory", "64M")
    hosts = {h["name"]: h for h in wait_for(lambda: len(grid.client().hosts()) == 2 and grid.client().hosts(), 60,
                                            "two workers")}
    assert hosts["half"]["cpus"] == max(1, cpus // 2)
    assert hosts["half"]["memory"] == memory // 4
    assert (hosts["one"]["cpus"], hosts["one"]["memory"]) == (1, 64 << 20)


def test_networked_apps_allowed_from_the_file(grid, tmp_path):
    if os.geteuid() != 0 or shutil.which("slirp4netns") is None:
        pytest.skip("networked jobs need a root worker and slirp4netns")
    grid.start_coordinator()
    prefs = tmp_path / "prefs.toml"
    prefs.write_text("[compute]\nnetwork_apps = true\n")
    grid.start_worker("net", grid.user("vol", "worker"), "--prefs", str(prefs))
    [host] = wait_for(lambda: grid.client().hosts(), 60, "the worker")
    assert host["network"] is True


# A job that reads its input whole (its size proves it was staged) and says so.
WC = ["{python}", "-c", "import os; print(os.path.getsize('data.bin'))"]
MiB = 1 << 20


def test_a_worker_over_its_disk_budget_evicts_least_recently_used_inputs_and_keeps_going(grid, tmp_path):
    prefs = tmp_path / "prefs.toml"
    prefs.write_text('[disk]\nbudget = "32M"\n')  # its jobs' inputs may take 16M, summed
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="wc", command=WC, replication=1, quorum=1)
    shas = [alice.put_bytes(bytes([i]) * (8 * MiB), access="public")["sha256"] for i in range(4)]
    worker = grid.start_worker("w", grid.user("vol", "worker"), "--prefs", str(prefs))
    [host] = wait_for(lambda: grid.client().hosts(), 60, "the worker")
    wait_for(lambda: grid.client().hosts()[0]["disk"] == 16 * MiB, 30, "its hello to say its disk")
    done = []
    for sha in shas:  # one after the other: the cache fills, then the oldest input goes
        [jid] = alice.submit([{"app": "wc", "inputs": [{"name": "data.bin", "sha256": sha}]}])
        job = grid.wait_final(alice, [jid], timeout=90)[jid]
        assert job["status"] == "COMPLETED", job
        done.append(jid)
    cache = grid.work_root / "w" / "cache"
    kept = {p.name for p in cache.iterdir()}
    # 3 x 8M cached + 8M copied into the 4th job's directory = 32M: the first input went.
    assert kept == set(shas[1:]), kept
    assert sum(p.stat().st_size for p in cache.iterdir()) <= 32 * MiB
    assert "disk budget: evicted blob:" in worker.output()


def test_a_worker_whose_budget_is_smaller_than_a_jobs_inputs_never_takes_it(grid, tmp_path):
    small, large = tmp_path / "small.toml", tmp_path / "large.toml"
    small.write_text('[disk]\nbudget = "16M"\n')  # inputs up to 8M
    large.write_text('[disk]\nbudget = "64M"\n')
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="wc", command=WC, replication=1, quorum=1)
    sha = alice.put_bytes(b"y" * (10 * MiB), access="public")["sha256"]
    vol = grid.user("vol", "worker")
    grid.start_worker("small", vol, "--prefs", str(small))
    wait_for(lambda: [h for h in grid.client().hosts() if h["disk"] == 8 * MiB], 60, "the small worker's hello")
    # The only host alive could never run it: refused at once, with the reason.
    from xwpy.client.api import ClientError

    with pytest.raises(ClientError) as e:
        alice.submit([{"app": "wc", "inputs": [{"name": "data.bin", "sha256": sha}]}])
    assert e.value.status == 400 and "its inputs take 10 MiB, the host's disk budget holds 8 MiB of inputs" in str(e.value)
    grid.start_worker("large", vol, "--prefs", str(large))
    wait_for(lambda: len(grid.client().hosts()) == 2, 60, "the large worker")
    ids = alice.submit([{"app": "wc", "args": [str(i)], "inputs": [{"name": "data.bin", "sha256": sha}]}
                        for i in range(3)])
    jobs = grid.wait_final(alice, ids, timeout=120)
    assert all(j["status"] == "COMPLETED" for j in jobs.values()), jobs
    names = {h["id"]: h["name"] for h in grid.client().hosts()}
    ran = {names[r["host_id"]] for i in ids for r in alice.job(i)["replicas"]}
    assert ran == {"large"}
    assert not (grid.work_root / "small" / "cache" / sha).exists()
