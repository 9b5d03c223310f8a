"""The catalog connector against a real database: group commit, failure isolation, round trips."""

from __future__ import annotations

import threading

import pytest
import pytest_twisted
from sqlalchemy import select, text
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from xwpy import tokens
from xwpy.server.catalog import jobs as jobs_catalog
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.changes import Changes
from xwpy.server.catalog.connector import Catalog, CatalogUnavailable
from xwpy.server.catalog.schema import users
from xwpy.server.scheduler.engine import Engine, HostState, JobState, NewJob, ReplicaState, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy
from xwpy.server.scheduler.shares import Usage


@pytest.fixture
def catalog(catalog_url):
    cat = Catalog.open(catalog_url, reactor)
    yield cat
    pytest_twisted.blockon(cat.close())


def add_user(conn, login):
    return users_catalog.insert(conn, login=login, role="user", group="", token_hash=tokens.token_hash(login), now=1.0)


@pytest_twisted.ensureDeferred
async def test_concurrent_writes_share_one_commit(catalog):
    gate = threading.Event()

    def blocker(conn):
        gate.wait(10)
        return add_user(conn, "first")

    first = catalog.write(blocker)
    rest = [catalog.write(add_user, f"u{i}") for i in range(50)]
    await deferToThread(gate.set)
    await first
    ids = [await d for d in rest]
    assert len(set(ids)) == 50
    assert catalog.writes == 51
    assert catalog.commits <= 3  # the 50 queued behind the first went together
    names = await catalog.read(lambda conn: [r[0] for r in conn.execute(select(users.c.login))])
    assert set(names) == {"first"} | {f"u{i}" for i in range(50)}


@pytest_twisted.ensureDeferred
async def test_a_failed_scheduler_write_poisons_later_ones_until_reset(catalog):
    gate = threading.Event()

    def boom(conn):
        gate.wait(10)
        add_user(conn, "half")  # written, then rolled back with the rest of the batch
        raise RuntimeError("disk full")

    bad = catalog.write(boom, engine=True)
    same_batch_engine = catalog.write(add_user, "engine-neighbour", engine=True)
    same_batch_other = catalog.write(add_user, "innocent")
    await deferToThread(gate.set)
    for d in (bad, same_batch_engine):
        with pytest.raises(CatalogUnavailable):
            await d
    assert await same_batch_other  # not tied to the scheduler: retried alone, committed
    with pytest.raises(CatalogUnavailable):
        await catalog.write(add_user, "later", engine=True)
    catalog.reset_failure()
    assert await catalog.write(add_user, "after-reset", engine=True)
    names = await catalog.read(lambda conn: {r[0] for r in conn.execute(select(users.c.login))})
    assert names == {"innocent", "after-reset"}  # nothing half-written


@pytest_twisted.ensureDeferred
async def test_scheduler_changes_round_trip(catalog):
    owner = await catalog.write(add_user, "owner")
    await catalog.write(
        lambda conn: conn.execute(
            text("INSERT INTO apps (id, name, owner_id, access, command, limits, validator, replication, quorum, created_at) "
                 "VALUES (1, 'a', :o, 'public', '[]', '{}', 'quorum', 2, 2, 0)"), {"o": owner})
    )
    host_ids = []
    for i in range(3):
        host_ids.append(await catalog.hosts.add(owner_id=owner, name=f"h{i}", token_hash=f"{i}" * 64, cpus=1, memory=1, os="", now=0.0))
    eng = Engine(lease_seconds=30)
    for h in host_ids:
        eng.add_host(HostState(h, owner, "", 1 << 30, last_alive=0))
    row = {"app_id": 1, "owner_id": owner, "batch": "b", "args": ["x"], "inputs": [], "replication": 2, "quorum": 2,
           "max_replicas": 4, "max_errors": 2, "memory": 0, "visibility": "public", "vis_group": ""}
    ids, ch = eng.add_jobs([NewJob(owner, 1, Policy(2, 2, 4, 2), PUBLIC, 0, dict(row)) for _ in range(3)], 1.0)
    await catalog.write(jobs_catalog.apply, ch, engine=True)
    reps, ch = eng.assign(host_ids[0], 3, 2.0)
    reps2, ch2 = eng.assign(host_ids[1], 1, 2.0)
    await catalog.write(jobs_catalog.apply, ch, engine=True)
    await catalog.write(jobs_catalog.apply, ch2, engine=True)
    _, ch = eng.report(host_ids[0], [Report(reps[0].id, True, digest="d" * 64, size=3, exit_code=0)], 3.0)
    _, ch3 = eng.report(host_ids[1], [Report(reps2[0].id, True, digest="d" * 64, size=3, exit_code=0)], 3.0)
    await catalog.write(jobs_catalog.apply, ch, engine=True)
    await catalog.write(jobs_catalog.apply, ch3, engine=True)

    job = await catalog.jobs.get(ids[0])
    assert job.status == "COMPLETED" and job.result_sha256 == "d" * 64 and job.args == ["x"]
    assert sorted(r.validation for r in job.replicas) == ["VALID", "VALID"]
    assert (await catalog.jobs.summary(owner_id=owner, batch="b"))["RUNNING"] == 2

    # A replica resumed from a checkpoint, beside a silent one: every stored field must come back.
    resumed = eng.replicas[reps[1].id]
    marks = {"covers": reps[2].id, "checkpoint": "c" * 64, "resume": "e" * 64, "origin": reps[2].id}
    for name, value in marks.items():
        setattr(resumed, name, value)
    ch = Changes()
    ch.replica(resumed.id, **marks)
    await catalog.write(jobs_catalog.apply, ch, engine=True)

    states, replicas, next_job, next_rep = await catalog.jobs.load_active()
    assert sorted(s.id for s in states) == ids[1:]
    assert {r.job_id for r in replicas} == set(ids[1:]) and all(r.status.value == "ASSIGNED" for r in replicas)
    assert next_job == max(ids) + 1 and next_rep == max(r.id for r in reps + reps2) + 1
    fresh = Engine(lease_seconds=30)
    hosts = [HostState(h, owner, "", 1 << 30) for h in host_ids]
    usage = {o: Usage(*u) for o, u in (await catalog.jobs.load_usage()).items()}
    assert not fresh.load(hosts=hosts, jobs=[JobState.of(s) for s in states], replicas=[ReplicaState.of(r) for r in replicas],
                          next_job_id=next_job, next_replica_id=next_rep, now=10.0, usage=usage)
    # Fair share goes on from the usage stored with the last job that ended.
    assert usage and fresh.usage(10.0) == eng.usage(10.0)
    assert {j: (s.wanted, s.hosts_used) for j, s in fresh.jobs.items()} == {j: (s.wanted, s.hosts_used) for j, s in eng.jobs.items()}
    # The rebuild is exact: each job's and replica's state as the engine had it, but for what is not
    # stored (progress, the stderr last seen) and the lease, which a restart extends.
    assert resumed.deadline is not None

    def kept(state, skip):
        return {f: getattr(state, f) for f in type(state).__dataclass_fields__ if f not in skip}

    skip_r = ("lease_expires", "progress")
    assert {i: kept(r, skip_r) for i, r in fresh.replicas.items()} == \
        {i: kept(r, skip_r) for i, r in eng.replicas.items() if eng.jobs.get(r.job_id)}
    skip_j = ("replicas", "last_stderr", "tally")  # (the tally: a memo of the replicas, rebuilt at the next decision)
    assert {i: kept(j, skip_j) for i, j in fresh.jobs.items()} == {i: kept(j, skip_j) for i, j in eng.jobs.items()}
    assert await catalog.jobs.blobs_of(ids) == set()


@pytest_twisted.ensureDeferred
async def test_a_write_the_locked_database_cannot_take_is_unavailable(tmp_path):
    """Another program holds SQLite's write lock longer than the busy timeout: an ordinary write
    fails as CatalogUnavailable (the API's 503), stores nothing, and succeeds once it is released."""
    import sqlite3

    db = tmp_path / "c.sqlite"
    cat = Catalog.open(f"sqlite:///{db}", reactor, busy_timeout=0.2)
    try:
        other = sqlite3.connect(str(db), isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(CatalogUnavailable, match="locked"):
            await cat.write(add_user, "while-locked")
        other.execute("ROLLBACK")
        other.close()
        assert await cat.write(add_user, "after")
        names = await cat.read(lambda conn: {r[0] for r in conn.execute(select(users.c.login))})
        assert names == {"after"}
    finally:
        await cat.close()
