"""Chaos: the grid under load while its processes are killed, stopped, cut off, starved of disk or of
its catalog — real processes on loopback. Each scenario records what it held, what it suffered and
what broke (tests/reliability/ledger.py) before it asserts that nothing did.

Fault timing is random but seeded (XWPY_CHAOS_SEED, printed on failure) and always waits on a
condition ("N more results since the last kill"), never on a sleep.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
import signal
import threading
import time

import psutil
import pytest
from sqlalchemy import create_engine, select

from tests.grid.conftest import SLOW, stdout_of
from tests.harness import wait_for
from tests.reliability import faults
from tests.reliability.ledger import server_errors
from xwpy import archive, config
from xwpy.client.api import ClientError
from xwpy.server.catalog.schema import small_blobs

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("XWPY_CHAOS_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 30)

# Like tests/grid/conftest.py's SQUARE, in the shell: a replica costs one Python start-up (the
# sandbox) instead of two, and these scenarios run a few thousand of them on two cores.
SQUARE = ["/bin/sh", "-c", 'echo "$(($1 * $1))"', "square", "{args}"]


def square(args) -> str:
    return f"{int(args[0]) ** 2}\n"


def rng_for(name: str) -> random.Random:
    print(f"chaos seed for {name}: XWPY_CHAOS_SEED={SEED}")
    return random.Random(f"{SEED}/{name}")


def configure(grid, heartbeat_seconds: float, **catalog) -> None:
    """Set the site's heartbeat (and [catalog] settings) before the coordinator starts."""
    grid.cfg = dataclasses.replace(
        grid.cfg,
        scheduler=dataclasses.replace(grid.cfg.scheduler, heartbeat_seconds=heartbeat_seconds),
        catalog=dataclasses.replace(grid.cfg.catalog, **catalog),
    )
    (grid.cfg.dir / config.CONFIG_NAME).write_text(config.render(grid.cfg))


def finished(client) -> int:
    counts = client.summary()
    return counts["COMPLETED"] + counts["ERROR"] + counts["CANCELLED"]


def coordinator_errors(grid) -> int:
    """500s and unhandled errors in the coordinator's log (all its lives: restarts append)."""
    return server_errors(grid.coordinator.output())


def worker_crashes(grid) -> int:
    """Unhandled errors in the workers' logs (a worker must survive whatever the coordinator does)."""
    return sum(len(re.findall(r"Traceback \(most recent call last\)|Unhandled [Ee]rror", p.output()))
               for p in {p.log: p for p in grid.procs if p.name != "coordinator"}.values())


def test_workers_killed_at_random_under_load(grid, ledger, tmp_path):
    """500 jobs (replication 2 or 3, quorum 2) on 4 workers of 2 slots, while workers are SIGKILLed
    at random moments and restarted (at once, or after the next kill)."""
    n_jobs = 500
    rng = rng_for("workers")
    configure(grid, heartbeat_seconds=0.4)
    grid.start_coordinator()
    admin = grid.client()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="square", command=SQUARE, replication=3, quorum=2)
    tokens = {f"w{i}": grid.user(f"vol{i}", "worker") for i in range(4)}
    workers = {name: grid.start_worker(name, tok, slots=2) for name, tok in tokens.items()}
    started = time.monotonic()
    ids = alice.submit([{"app": "square", "args": [str(n)], "replication": 3 if n % 4 == 0 else 2}
                        for n in range(n_jobs)], batch="chaos")
    kills = 0
    down: str | None = None
    deadline = started + 400
    while True:
        assert time.monotonic() < deadline, f"{n_jobs} jobs not finished in 400 s ({alice.summary()})"
        since = admin.call("GET", "/stats")["reported"]
        step = rng.randint(20, 60)
        state = wait_for(
            lambda: "done" if finished(alice) == n_jobs else admin.call("GET", "/stats")["reported"] >= since + step,
            180, f"{step} more results or the end", interval=0.2,
        )
        if state == "done":
            break
        if down is not None:
            workers[down] = grid.start_worker(down, tokens[down], slots=2)
            down = None
        victim = rng.choice(sorted(workers))
        workers[victim].stop(signal.SIGKILL)
        kills += 1
        if rng.random() < 0.6:
            workers[victim] = grid.start_worker(victim, tokens[victim], slots=2)
        else:
            down = victim  # stays down until the next kill
    seconds = time.monotonic() - started
    stats = admin.call("GET", "/stats")
    result = faults.audit(grid, square, ids)
    ledger.record(
        scenario="workers SIGKILLed at random under load",
        load=f"{n_jobs} jobs r2-3 q2, 4 workers x 2 slots",
        faults=f"{kills} worker SIGKILLs",
        lost=len(result.lost),
        duplicated=result.duplicated + max(stats["certified"] - n_jobs, 0),
        wrong=len(result.wrong) + len(result.miscertified),
        server_errors=coordinator_errors(grid),
        seconds=seconds,
    )
    assert kills >= 5, "the load ended before the chaos could start"
    assert not result.lost and not result.wrong and not result.miscertified, result.summary()
    assert not result.leased_twice and not result.voted_twice, result.summary()
    assert stats["certified"] == n_jobs and stats["failed_jobs"] == 0, stats
    assert stats["lost"] > 0  # the kills did take replicas down with them
    for jid in random.Random(SEED).sample(ids, 5):  # and what the API serves is what the audit read
        n = ids.index(jid)
        assert stdout_of(alice, jid, tmp_path) == square([n])
    assert coordinator_errors(grid) == 0 and worker_crashes(grid) == 0


def test_coordinator_killed_twice_under_load(grid, ledger):
    """300 jobs submitted in batches while the coordinator is SIGKILLed twice and restarted: every
    acknowledged job exists afterwards and all jobs are certified once, rightly."""
    n_batches, per_batch = 15, 20
    n_jobs = n_batches * per_batch
    rng = rng_for("coordinator")
    configure(grid, heartbeat_seconds=0.4)
    coordinator = grid.start_coordinator()
    alice_token = grid.user("alice")
    alice = grid.client(alice_token)
    alice.register_app(name="square", command=SQUARE, replication=3, quorum=2)
    for i in range(4):
        grid.start_worker(f"w{i}", grid.user(f"vol{i}", "worker"), slots=2)
    acked: dict[int, list] = {}
    unreached: list[str] = []  # submissions that found no coordinator (killed before they were sent)
    errors: list[BaseException] = []
    started = time.monotonic()

    def submitter():
        client = grid.client(alice_token)
        try:
            for b in range(n_batches):
                specs = [{"app": "square", "args": [str(n)], "replication": 3 if n % 4 == 0 else 2}
                         for n in range(b * per_batch, (b + 1) * per_batch)]
                # A bounded backlog, so that submissions go on while the coordinator is killed.
                wait_for(lambda: sum(client.summary()[s] for s in ("PENDING", "RUNNING")) < 2 * per_batch,
                         180, "the backlog to shrink", interval=0.2)
                while True:
                    if kill_now.is_set():  # the test wants the coordinator killed during this one
                        kill_now.clear()
                        submitting.set()
                    try:
                        # An answer lost with the coordinator: the client resends the submission
                        # under its key, and must get the jobs stored the first time.
                        for jid, spec in zip(client.submit(specs, batch=f"b{b}", retry_seconds=120), specs):
                            acked[jid] = spec["args"]
                        break
                    except ClientError as e:
                        if e.code != "unreachable":
                            raise
                        unreached.append(str(e))
                        wait_for(client.ping, 60, "the coordinator back", interval=0.2)
        except BaseException as e:  # noqa: BLE001 - re-raised by the test thread
            errors.append(e)

    kill_now, submitting = threading.Event(), threading.Event()
    thread = threading.Thread(target=submitter, name="submitter", daemon=True)
    thread.start()
    kills = 0
    for at in sorted([rng.uniform(0.15, 0.35), rng.uniform(0.4, 0.6)]):
        wait_for(lambda: errors or alice.summary()["COMPLETED"] >= at * n_jobs, 180, f"{at:.0%} of the jobs done",
                 interval=0.2)
        # Kill it as a submission goes out: that client hears nothing, and must not lose what
        # it was told was stored. (The jitter is fault timing, not synchronisation.)
        submitting.clear()
        kill_now.set()
        deadline = time.monotonic() + 120
        while not submitting.wait(0.1) and thread.is_alive():  # woken the moment it is set
            assert time.monotonic() < deadline, "timed out waiting for a submission going out"
        time.sleep(rng.uniform(0, 0.008))
        coordinator.stop(signal.SIGKILL)
        kills += 1
        coordinator = grid.start_coordinator()
        alice.close()
    thread.join(180)
    assert not thread.is_alive() and not errors, errors
    ids = [j["id"] for j in alice.jobs()]
    grid.wait_final(alice, ids, timeout=180)
    seconds = time.monotonic() - started
    result = faults.audit(grid, square, acked)
    extra = len(result.jobs) - n_jobs  # jobs stored twice: a resent submission made anew
    ledger.record(
        scenario="coordinator SIGKILLed twice under load",
        load=f"{n_jobs} jobs r2-3 q2 in {n_batches} batches, 4 workers x 2 slots",
        faults=f"{kills} coordinator SIGKILLs as submissions went out ({len(unreached)} found it down)",
        lost=len(result.lost),
        duplicated=result.duplicated + extra,
        wrong=len(result.wrong) + len(result.miscertified),
        server_errors=coordinator_errors(grid),
        seconds=seconds,
    )
    assert len(acked) == n_jobs and sorted(int(a[0]) for a in acked.values()) == list(range(n_jobs))
    assert extra == 0 and result.duplicated == 0, result.summary()
    assert not result.lost and not result.wrong and not result.miscertified, result.summary()
    assert not result.leased_twice and not result.voted_twice, result.summary()
    assert coordinator_errors(grid) == 0 and worker_crashes(grid) == 0


def host_ids(grid) -> dict[str, int]:
    return {h["name"]: h["id"] for h in grid.client().hosts()}


def test_hung_worker_loses_its_replica_at_the_deadline_and_its_late_report_is_refused(grid, ledger, tmp_path):
    """A worker SIGSTOPped mid-job keeps its connections but stops heartbeating: silent past its
    replica's deadline (the app's: short here), it loses the replica, and the job is finished by
    others; a result for the lost replica — forged with its host token while it hangs, then its
    own once SIGCONTed — changes nothing, and the worker works on. (Back before the deadline, it
    would have kept it: tests/grid/test_sleep.py.)"""
    configure(grid, heartbeat_seconds=0.25)
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    # A deadline far beyond what an honest replica needs here (a second's sleep), and short.
    alice.register_app(name="slow", command=SLOW, replication=2, quorum=2, deadline=10)
    victim = grid.start_worker("hung", grid.user("vol0", "worker"), "--log-level", "debug")
    grid.start_worker("w1", grid.user("vol1", "worker"))
    started = time.monotonic()
    [jid] = alice.submit([{"app": "slow", "args": ["1", "hang-check"]}])
    wait_for(lambda: len(host_ids(grid)) == 2, 30, "two hosts")
    hung = host_ids(grid)["hung"]
    [rep] = wait_for(lambda: [r for r in alice.job(jid)["replicas"]
                              if r["host_id"] == hung and r["status"] == "RUNNING"], 30, "the victim's replica running")
    victim.send(signal.SIGSTOP)
    lost = wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["id"] == rep["id"] and r["status"] == "LOST"],
                    60, "the hung worker's replica to pass its deadline")
    assert lost[0]["error"] == "deadline passed"
    assert alice.job(jid)["status"] == "RUNNING"  # no third host yet: the job waits for one

    # A forged result for the lost replica, with the hung host's own token: refused, not stored.
    host_token = json.loads((grid.work_root / "hung" / "host.json").read_text())["token"]
    forged = archive.from_files({"stdout": b"forged\n"})
    forged_sha = hashlib.sha256(forged).hexdigest()
    as_host = grid.client(host_token)
    reply = as_host.call("POST", "/work/results", {"results": [{
        "replica_id": rep["id"], "exit_code": 0, "result_sha256": forged_sha,
        "inline": base64.b64encode(forged).decode(),
    }]})
    assert reply["outcome"] == {str(rep["id"]): "lost"}

    grid.start_worker("w2", grid.user("vol2", "worker"))
    job = grid.wait_final(alice, [jid], timeout=60)[jid]
    # The hung worker's job process ran on (a session of its own) and ended meanwhile.
    wait_for(lambda: not [p for p in psutil.process_iter(["cmdline", "status"])
                          if "hang-check" in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE],
             30, "the hung worker's job process to end")
    victim.send(signal.SIGCONT)
    # Woken, it reports the stale replica and drops its kept result on the coordinator's answer
    # ("replica N: result dropped (the coordinator no longer wants it: <answer>)"), or first hears
    # from its heartbeat that it should abort it — often both. "replica N: result accepted" would
    # be a late result taken.
    rid = rep["id"]
    stale = re.compile(rf"replica {rid}: result (accepted)|replica {rid}: result dropped \(the coordinator no "
                       rf"longer wants it[:( ]+(\w+)|replica {rid} (aborted) by the coordinator")
    wait_for(lambda: stale.search(victim.output()), 90, "the woken worker to deal with its stale replica")
    # It works on: a job that needs all three hosts completes.
    [jid2] = alice.submit([{"app": "slow", "args": ["0.1", "after"], "replication": 3, "quorum": 3}])
    job2 = grid.wait_final(alice, [jid2], timeout=60)[jid2]
    seconds = time.monotonic() - started
    result = faults.audit(grid, lambda args: f"done {args[1]}\n")
    forged_stored = _small_blob_exists(grid, forged_sha)
    after = {r["id"]: r for r in alice.job(jid)["replicas"]}
    late = sorted({a or b or c for a, b, c in stale.findall(victim.output())})
    ledger.record(
        scenario="hung worker (SIGSTOP) loses its replica at its deadline; late reports refused",
        load="2 jobs, 3 workers",
        faults=f"1 worker SIGSTOPped; late reports: 1 forged, 1 real ({'+'.join(late)})",
        bad_inputs=1,
        lost=len(result.lost),
        duplicated=result.duplicated,
        wrong=(len(result.wrong) + len(result.miscertified) + int(forged_stored)
               + int(after[rep["id"]]["status"] != "LOST")),
        server_errors=coordinator_errors(grid),
        seconds=seconds,
    )
    assert job["status"] == "COMPLETED" and job2["status"] == "COMPLETED"
    assert not result.lost and not result.wrong and not result.miscertified, result.summary()
    assert not result.leased_twice and not result.voted_twice, result.summary()
    assert after[rep["id"]]["status"] == "LOST" and after[rep["id"]]["validation"] == "PENDING"
    assert not forged_stored, "a refused result was stored"
    assert set(late) <= {"aborted", "unknown", "lost"}, late  # a report it still sent was refused
    assert any(r["host_id"] == hung and r["validation"] == "VALID" for r in alice.job(jid2)["replicas"])
    assert stdout_of(alice, jid, tmp_path) == "done hang-check\n"
    assert coordinator_errors(grid) == 0 and worker_crashes(grid) == 0


def _small_blob_exists(grid, sha: str) -> bool:
    eng = create_engine(grid.cfg.database_url)
    try:
        with eng.connect() as conn:
            return conn.execute(select(small_blobs.c.sha256).where(small_blobs.c.sha256 == sha)).first() is not None
    finally:
        eng.dispose()


# Output larger than a report may carry inline (64 KiB): the worker uploads it first.
BIG = ["{python}", "-c", "import sys; n = int(sys.argv[1]); sys.stdout.write(f'{n * n}\\n' * 40000)", "{args}"]


def big(args) -> str:
    return f"{int(args[0]) ** 2}\n" * 40000


def start_worker_via(grid, url: str, name: str, token: str, *extra: str, slots: int = 1):
    """A worker that reaches the coordinator at ``url`` (a proxy) instead of the grid's own."""
    own = grid.url
    grid.url = url
    try:
        return grid.start_worker(name, token, *extra, slots=slots)
    finally:
        grid.url = own


def test_network_drops_mid_upload(grid, ledger):
    """One worker reaches the coordinator through a proxy that resets the connection in the
    middle of its first two result uploads: the partial uploads never become data, the worker
    resumes them (its upload session) and the results are certified right."""
    n_jobs, cuts = 3, 2
    configure(grid, heartbeat_seconds=0.3)
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="big", command=BIG, replication=2, quorum=2)
    started = time.monotonic()
    with faults.CutProxy(grid.port, cut_after=96 << 10, cuts=cuts) as proxy:
        cut = start_worker_via(grid, f"https://127.0.0.1:{proxy.port}", "cut", grid.user("vol0", "worker"),
                               "--log-level", "debug")
        ids = alice.submit([{"app": "big", "args": [str(100 + n)]} for n in range(n_jobs)])
        # The other worker only once the cut one has sent its results: a result another replica
        # stored first is not sent again (nothing would be cut).
        wait_for(lambda: sum(r["status"] == "DONE" for j in ids for r in alice.job(j)["replicas"]) == n_jobs,
                 90, "the cut worker's results")
        grid.start_worker("w1", grid.user("vol1", "worker"))
        jobs = grid.wait_final(alice, ids, timeout=90)
        seconds = time.monotonic() - started
        cut_at = list(proxy.cut_at)
    result = faults.audit(grid, big, ids)
    torn = faults.blob_store_problems(grid)
    cut_host = host_ids(grid)["cut"]
    retried = len(re.findall(r"reporting replica \d+ failed|upload of \S+ cut", cut.output()))
    ledger.record(
        scenario="network drops mid-upload",
        load=f"{n_jobs} jobs r2 q2 with 234 KiB results, 2 workers",
        faults=f"{len(cut_at)} uploads cut after {cut_at[0] >> 10 if cut_at else 0} KiB",
        lost=len(result.lost),
        duplicated=result.duplicated,
        wrong=len(result.wrong) + len(result.miscertified) + len(torn) + result.data_rows,
        server_errors=coordinator_errors(grid),
        seconds=seconds,
    )
    assert len(cut_at) == cuts and retried >= cuts, (cut_at, retried)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    assert not result.lost and not result.wrong and not result.miscertified, result.summary()
    assert not result.leased_twice and not result.voted_twice, result.summary()
    assert not torn and result.data_rows == 0, torn
    # The cut worker's own results made it in the end (resumed, not rescheduled).
    assert n_jobs == sum(r["host_id"] == cut_host and r["validation"] == "VALID"
                         for j in result.jobs.values() for r in j["replicas"])
    assert coordinator_errors(grid) == 0 and worker_crashes(grid) == 0


def test_catalog_locked_by_another_program(grid, ledger):
    """Another program holds the SQLite catalog's write lock longer than the coordinator waits for
    it (busy_timeout_seconds): writes are answered 503 with a JSON body and store nothing, reads go
    on, workers retry; once the lock is released the service resumes and every job completes."""
    configure(grid, heartbeat_seconds=0.3, busy_timeout_seconds=0.5)
    grid.start_coordinator()
    admin = grid.client()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="square", command=SQUARE, replication=2, quorum=2)
    workers = [grid.start_worker(f"w{i}", grid.user(f"vol{i}", "worker"), slots=2) for i in range(2)]
    ids = alice.submit([{"app": "square", "args": [str(n)]} for n in range(60)])
    wait_for(lambda: alice.summary()["COMPLETED"] >= 5, 60, "work under way")
    blob = b"written while the catalog was locked\n" * 100
    sha = hashlib.sha256(blob).hexdigest()
    late_jobs = [{"app": "square", "args": [str(n)]} for n in range(1000, 1010)]
    writes = {
        "submit": lambda: alice.submit(late_jobs, batch="late"),
        "upload": lambda: alice.put_bytes(blob, name="late.txt"),
        "add user": lambda: admin.add_user("bob"),
    }
    answers: dict[str, tuple] = {}
    started = time.monotonic()
    db = grid.cfg.database_url.removeprefix("sqlite:///")
    with faults.locked_sqlite(db):
        for what, call in writes.items():
            try:
                call()
                answers[what] = (200, "stored")
            except ClientError as e:
                answers[what] = (e.status, e.code)
        read_ok = alice.summary()["COMPLETED"] >= 5  # readers are not blocked (WAL)
        health_locked = admin.health()  # ...but the health check writes, and says what failed
        # The workers' requests and reports hit it too.
        wait_for(lambda: any("HTTP 503" in w.output() for w in workers), 30, "a worker told to retry later")
    locked = time.monotonic() - started
    # Nothing of the refused writes was stored. (The upload's blob may be in the store already:
    # blobs go in before the row that names them, so a row never names a missing blob; unnamed,
    # it is nobody's data, and the next upload of the same content finds it there.)
    half_written = [what for what, present in (
        ("submit", any(int(j["args"][0]) >= 1000 for j in faults.audit(grid, square).jobs.values())),
        ("upload", any(d["sha256"] == sha for d in alice.data()) or faults.blob_store_problems(grid)),
        ("add user", any(u["login"] == "bob" for u in admin.users())),
    ) if present and answers[what][0] != 200]
    # Service resumes: the same writes succeed once the scheduler has recovered.
    late_ids = wait_for(writes["submit"], 60, "submissions accepted again", interval=0.2)
    wait_for(writes["upload"], 30, "uploads accepted again", interval=0.2)
    wait_for(writes["add user"], 30, "users added again", interval=0.2)
    jobs = grid.wait_final(alice, ids + late_ids, timeout=120)
    seconds = time.monotonic() - started
    result = faults.audit(grid, square, ids + late_ids)
    ledger.record(
        scenario="catalog locked by another program",
        load=f"{len(jobs)} jobs r2 q2, 2 workers x 2 slots",
        faults=f"SQLite write lock held {locked:.0f} s: " + ", ".join(f"{w} {s}" for w, (s, _) in answers.items()),
        lost=len(result.lost) + len(half_written),
        duplicated=result.duplicated,
        wrong=len(result.wrong) + len(result.miscertified),
        server_errors=coordinator_errors(grid),  # each 500 is logged
        seconds=seconds,
    )
    assert answers == {w: (503, "unavailable") for w in writes}, answers
    assert read_ok and not half_written, half_written
    assert health_locked[0] == 503 and health_locked[1]["failed"] == ["catalog"], health_locked
    assert "locked" in health_locked[1]["checks"]["catalog"]["detail"], health_locked
    status, health = admin.health()
    assert status == 200 and health["failed"] == [], health
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    assert not result.lost and not result.wrong and not result.miscertified, result.summary()
    assert not result.leased_twice and not result.voted_twice, result.summary()
    assert alice.get_data(sha, grid.root / "late.txt") == len(blob)
    assert coordinator_errors(grid) == 0 and worker_crashes(grid) == 0


def test_blob_store_disk_full(grid, ledger):
    """The coordinator's blob store is on a disk that fills up (a 2 MiB tmpfs, topped up by a
    filler file): uploads — a user's data, the workers' results — are answered 503 with a JSON
    body and leave nothing behind; once space is freed they go through and every job completes."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(faults.tmpfs(grid.cfg.blobs, "2m"))
        except PermissionError as e:
            pytest.skip(f"cannot mount a tmpfs for the blob store (root only): {e}")
        configure(grid, heartbeat_seconds=0.3)
        # Health fails below 1 MiB free: with the filler (64 KiB left), not without (2 MiB).
        grid.cfg = dataclasses.replace(grid.cfg, limits=dataclasses.replace(grid.cfg.limits, min_free_bytes=1 << 20))
        (grid.cfg.dir / config.CONFIG_NAME).write_text(config.render(grid.cfg))
        grid.start_coordinator()
        alice = grid.client(grid.user("alice"))
        alice.register_app(name="big", command=BIG, replication=2, quorum=2)
        workers = [grid.start_worker(f"w{i}", grid.user(f"vol{i}", "worker")) for i in range(2)]
        wait_for(lambda: len(host_ids(grid)) == 2, 30, "two hosts")
        filler = faults.fill(grid.cfg.blobs, leave=64 << 10)
        started = time.monotonic()
        data = b"a user's data set\n" * 12000  # 210 KB
        sha = hashlib.sha256(data).hexdigest()
        try:
            alice.put_bytes(data, name="set.txt")
            refused = (200, "stored")
        except ClientError as e:
            refused = (e.status, e.code)
        ids = alice.submit([{"app": "big", "args": [str(100 + n)]} for n in range(2)])
        busy = re.compile(r"(reporting replica \d+ failed|upload of \S+ cut) \(coordinator busy \(HTTP 503\)")
        wait_for(lambda: sum(len(busy.findall(w.output())) for w in workers) >= 2, 60,
                 "the workers' uploads refused for want of space")
        leftovers = faults.blob_store_problems(grid)
        stored_while_full = any(d["sha256"] == sha for d in alice.data())
        health_full = alice.health()
        full_for = time.monotonic() - started
        filler.unlink()  # space again
        wait_for(lambda: alice.put_bytes(data, name="set.txt"), 30, "uploads accepted again")
        health_again = alice.health()
        jobs = grid.wait_final(alice, ids, timeout=90)
        seconds = time.monotonic() - started
        result = faults.audit(grid, big, ids)
        leftovers += faults.blob_store_problems(grid)
        got = alice.get_data(sha, grid.root / "set.txt")
        ledger.record(
            scenario="blob store disk full",
            load="1 upload + 2 jobs r2 q2 with 234 KiB results, 2 workers",
            faults=f"blob store full for {full_for:.1f} s: user upload {refused[0]}, workers' uploads retried",
            lost=len(result.lost),
            duplicated=result.duplicated,
            wrong=len(result.wrong) + len(result.miscertified) + len(leftovers) + int(stored_while_full),
            server_errors=coordinator_errors(grid),
            seconds=seconds,
        )
        assert refused == (503, "unavailable"), refused
        assert health_full[0] == 503 and health_full[1]["failed"] == ["blobs"], health_full
        assert health_again[0] == 200 and health_again[1]["failed"] == [], health_again
        assert not leftovers and not stored_while_full, leftovers
        assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
        assert not result.lost and not result.wrong and not result.miscertified, result.summary()
        assert got == len(data)
        assert coordinator_errors(grid) == 0 and worker_crashes(grid) == 0
        grid.close()  # before the tmpfs goes
