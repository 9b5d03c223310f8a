"""The dispatcher against a real catalog: what callers hear is always already committed."""

from __future__ import annotations

import hashlib
import threading

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from xwpy import archive, protocol, tokens
from xwpy.server.blobstore import BlobStore
from xwpy.server.catalog import jobs as jobs_catalog
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.connector import Catalog
from xwpy.server.catalog.rows import App
from xwpy.server.reads import Reads
from xwpy.server.scheduler.dispatcher import Dispatcher
from xwpy.server.scheduler.engine import HostState, NewJob
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

LIMITS = protocol.encode(protocol.Limits())


@pytest.fixture
def setup(tmp_path):
    cat = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}", reactor)
    app = App(1, "a", 1, "u", "public", None, ("true",), LIMITS, "quorum", 1, 1)
    d = Dispatcher(cat, BlobStore(tmp_path / "blobs"), reactor, apps={1: app}.get, lease_seconds=30,
                   heartbeat_seconds=10, reap_seconds=3600, max_wait_seconds=5)
    yield cat, d
    d.stopService()
    pytest_twisted.blockon(cat.close())


async def prepare(cat, d):
    def rows(conn):
        uid = users_catalog.insert(conn, login="u", role="user", group="", token_hash=tokens.token_hash("u"), now=0)
        conn.exec_driver_sql(
            "INSERT INTO apps (id, name, owner_id, access, command, limits, validator, replication, quorum, created_at) "
            "VALUES (1, 'a', ?, 'public', '[\"true\"]', '{}', 'quorum', 1, 1, 0)", (uid,))
        conn.exec_driver_sql(
            "INSERT INTO hosts (id, owner_id, name, token_hash, cpus, memory, os, registered_at, last_alive, reputation) "
            "VALUES (1, ?, 'h', 'x', 1, 0, '', 0, 0, 0)", (uid,))
        return uid

    uid = await cat.write(rows)
    await d.start()
    d.add_host(HostState(1, uid, "", 1 << 34, last_alive=reactor.seconds()))
    row = {"app_id": 1, "owner_id": uid, "batch": "b", "args": [], "inputs": [], "replication": 1, "quorum": 1,
           "max_replicas": 2, "max_errors": 1, "memory": 0, "visibility": "public", "vis_group": ""}
    [jid] = await d.submit([NewJob(uid, 1, Policy(1, 1, 2, 1), PUBLIC, 0, row)])
    [x] = await d.request_work(1, 1, 0)
    return jid, x.replica.id


@pytest_twisted.ensureDeferred
async def test_wait_final_fires_only_once_the_final_state_is_committed(setup):
    cat, d = setup
    jid, rid = await prepare(cat, d)
    gate = threading.Event()
    blocker = cat.write(lambda conn: gate.wait(10))
    data = archive.from_files({"stdout": b"ok\n"})
    result = protocol.ResultReport(replica_id=rid, exit_code=0, result_sha256=hashlib.sha256(data).hexdigest(), inline=data)
    reported = Deferred.fromCoroutine(d.report(1, [result]))
    assert jid not in d.engine.jobs  # certified in memory already...
    waiting = d.wait_final(jid, 30)
    assert not waiting.called  # ...but not committed: nobody may hear of it yet
    await deferToThread(gate.set)
    await blocker
    assert (await reported) == {rid: "accepted"}
    await waiting
    assert (await cat.read(jobs_catalog.get, jid)).status == "COMPLETED"
    # Once committed, waiting on a final job answers at once.
    assert d.wait_final(jid, 30).called


@pytest_twisted.ensureDeferred
async def test_a_refused_result_is_not_stored(setup):
    from xwpy.server.catalog import blobs as blobs_catalog

    cat, d = setup
    jid, rid = await prepare(cat, d)
    await d.release(1, [rid])  # the replica is lost (given back): a result for it comes too late
    data = archive.from_files({"stdout": b"late\n"})
    digest = hashlib.sha256(data).hexdigest()
    late = protocol.ResultReport(replica_id=rid, exit_code=0, result_sha256=digest, inline=data)
    assert (await d.report(1, [late])) == {rid: "lost"}
    assert await cat.read(blobs_catalog.get, digest) is None


@pytest_twisted.ensureDeferred
async def test_hello_keeps_the_replicas_the_worker_still_holds_and_a_rebuild_keeps_them_too(setup):
    """A restarted worker that kept a job's directory says so at hello: its replica goes on (with
    its deadline, its last checkpoint), also in the catalog a restarted coordinator reads."""
    cat, d = setup
    jid, rid = await prepare(cat, d)
    assert await d.alive(1, [rid], checkpoints={rid: "c" * 64}) == []
    await d.hello(1, {}, held=[rid])
    assert d.engine.replicas[rid].status.active
    [row] = (await cat.read(jobs_catalog.get, jid)).replicas
    assert (row.status, row.checkpoint, row.error) == ("RUNNING", "c" * 64, None)
    assert row.deadline == pytest.approx(row.assigned_at + protocol.DEFAULT_DEADLINE)
    await d._rebuild()
    r = d.engine.replicas[rid]
    assert (r.checkpoint, r.deadline) == ("c" * 64, row.deadline)
    await d.hello(1, {}, held=[])  # and a worker that kept nothing loses it
    [row] = (await cat.read(jobs_catalog.get, jid)).replicas
    assert (row.status, row.error) == ("LOST", "worker restarted")


async def same_as_catalog(cat, reads: Reads, jid: int) -> None:
    job = await reads.job(jid)
    assert job == await cat.read(jobs_catalog.get, jid)
    for owner, batch in ((None, None), (job.owner_id, None), (job.owner_id, "b"), (None, "b"), (job.owner_id, "c")):
        # (kept from the first call on, moved by each committed change since)
        assert await reads.counts(owner, batch) == await cat.read(
            lambda c: jobs_catalog.summary(c, owner_id=owner, batch=batch)), (owner, batch)
    assert await reads.work_done([1]) == await cat.read(jobs_catalog.valid_by_host, [1])


@pytest_twisted.ensureDeferred
async def test_the_read_cache_serves_every_step_once_committed(setup):
    """xwpy.server.reads on a real dispatcher and catalog: after every step of a job's life, what
    it serves from memory is what the catalog holds, and a caller woken by a commit reads the new
    state."""
    cat, d = setup
    reads = Reads(cat, reactor)
    d.on_commit(reads.changed)
    jid, rid = await prepare(cat, d)  # submitted, then leased to host 1
    await same_as_catalog(cat, reads, jid)
    assert (await reads.job(jid)).replicas[0].status == "ASSIGNED"
    hits = reads.hits
    await same_as_catalog(cat, reads, jid)
    assert reads.hits > hits  # served from memory while nothing changed

    assert await d.alive(1, [rid], {rid: 0.5}) == []  # the host's heartbeat: RUNNING
    await same_as_catalog(cat, reads, jid)
    assert (await reads.job(jid)).replicas[0].status == "RUNNING"

    waiting = d.wait_final(jid, 30)
    seen_when_woken = []
    waiting.addCallback(lambda _: Deferred.fromCoroutine(reads.job(jid)).addCallback(seen_when_woken.append))
    data = archive.from_files({"stdout": b"ok\n"})
    report = protocol.ResultReport(replica_id=rid, exit_code=0, result_sha256=hashlib.sha256(data).hexdigest(),
                                   inline=data)
    assert await d.report(1, [report]) == {rid: "accepted"}
    await waiting
    assert seen_when_woken[0].status == "COMPLETED"  # woken by the commit: never the row kept before it
    await same_as_catalog(cat, reads, jid)
    assert (await reads.work_done([1])) == {1: 1}


@pytest_twisted.ensureDeferred
async def test_a_disabled_volunteers_hosts_stay_gone_after_a_rebuild(setup):
    cat, d = setup
    await prepare(cat, d)
    [u] = await cat.users.all()
    await cat.users.update(u.id, disabled=True)
    await d._rebuild()  # as after a restart, or a takeover
    assert d.engine.hosts[1].owner_disabled and not d.engine.hosts[1].alive(reactor.seconds(), 30)


@pytest_twisted.ensureDeferred
async def test_a_result_of_a_replica_aborted_as_no_longer_needed_is_refused_as_aborted_not_unknown(setup):
    """Job replicated on two hosts, quorum 1: the first result certifies it and the other replica
    is aborted; the job leaves the scheduler's memory. The aborted replica's worker, reporting
    anyway, hears why ("aborted"), not "unknown" (its log said "no longer wants it: unknown")."""
    cat, d = setup
    uid = await cat.write(lambda conn: users_catalog.insert(conn, login="u", role="user", group="",
                                                           token_hash=tokens.token_hash("u"), now=0))

    def rows(conn):
        conn.exec_driver_sql(
            "INSERT INTO apps (id, name, owner_id, access, command, limits, validator, replication, quorum, created_at) "
            "VALUES (1, 'a', ?, 'public', '[\"true\"]', '{}', 'quorum', 2, 1, 0)", (uid,))
        for host in (1, 2):
            conn.exec_driver_sql(
                "INSERT INTO hosts (id, owner_id, name, token_hash, cpus, memory, os, registered_at, last_alive, "
                f"reputation) VALUES ({host}, ?, 'h{host}', 'x{host}', 1, 0, '', 0, 0, 0)", (uid,))

    await cat.write(rows)
    await d.start()
    for host in (1, 2):
        d.add_host(HostState(host, uid, "", 1 << 34, last_alive=reactor.seconds()))
    row = {"app_id": 1, "owner_id": uid, "batch": None, "args": [], "inputs": [], "replication": 2, "quorum": 1,
           "max_replicas": 2, "max_errors": 1, "memory": 0, "visibility": "public", "vis_group": ""}
    [jid] = await d.submit([NewJob(uid, 1, Policy(2, 1, 2, 1), PUBLIC, 0, row)])
    [first] = await d.request_work(1, 1, 0)
    [second] = await d.request_work(2, 1, 0)

    def result(rid, text):
        data = archive.from_files({"stdout": text})
        return protocol.ResultReport(replica_id=rid, exit_code=0, result_sha256=hashlib.sha256(data).hexdigest(),
                                     inline=data)

    assert await d.report(1, [result(first.replica.id, b"ok\n")]) == {first.replica.id: "accepted"}
    assert jid not in d.engine.jobs and (await cat.read(jobs_catalog.get, jid)).status == "COMPLETED"
    late = second.replica.id
    assert await d.report(2, [result(late, b"ok\n")]) == {late: "aborted"}
    # Another host's replica, or none at all: unknown still.
    assert await d.report(1, [result(late, b"ok\n")]) == {late: "unknown"}
    assert await d.report(2, [result(10**6, b"ok\n")]) == {10**6: "unknown"}


@pytest_twisted.ensureDeferred
async def test_a_comparator_parses_each_result_once(tmp_path, monkeypatch):
    """A job's third result is compared with the two earlier ones without reading or parsing them
    again (compare.Prepared): each result is prepared once, and the quorum over equivalences
    certifies results that differ in their last digits."""
    from xwpy.compare import Numeric

    parsed = []
    real = Numeric.prepare
    monkeypatch.setattr(Numeric, "prepare", staticmethod(lambda files, params: parsed.append(1) or real(files, params)))
    cat = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}", reactor)
    app = App(1, "a", 1, "u", "public", None, ("true",), LIMITS, "quorum", 3, 3, comparator="numeric",
              compare={"rtol": 1e-9})
    d = Dispatcher(cat, BlobStore(tmp_path / "blobs"), reactor, apps={1: app}.get, lease_seconds=30,
                   heartbeat_seconds=10, reap_seconds=3600, max_wait_seconds=5)
    try:
        def rows(conn):
            uid = users_catalog.insert(conn, login="u", role="user", group="", token_hash=tokens.token_hash("u"), now=0)
            conn.exec_driver_sql(
                "INSERT INTO apps (id, name, owner_id, access, command, limits, validator, replication, quorum, "
                "created_at) VALUES (1, 'a', ?, 'public', '[\"true\"]', '{}', 'quorum', 3, 3, 0)", (uid,))
            for h in (1, 2, 3):
                conn.exec_driver_sql(
                    "INSERT INTO hosts (id, owner_id, name, token_hash, cpus, memory, os, registered_at, last_alive, "
                    "reputation) VALUES (?, ?, 'h', ?, 1, 0, '', 0, 0, 0)", (h, uid, f"x{h}"))
            return uid

        uid = await cat.write(rows)
        await d.start()
        for h in (1, 2, 3):
            d.add_host(HostState(h, uid, "", 1 << 34, last_alive=reactor.seconds()))
        row = {"app_id": 1, "owner_id": uid, "batch": None, "args": [], "inputs": [], "replication": 3, "quorum": 3,
               "max_replicas": 3, "max_errors": 1, "memory": 0, "visibility": "public", "vis_group": ""}
        [jid] = await d.submit([NewJob(uid, 1, Policy(3, 3, 3, 1), PUBLIC, 0, row)])
        leased = {h: (await d.request_work(h, 1, 0))[0].replica.id for h in (1, 2, 3)}
        for h, x in zip((1, 2, 3), ("3.141592653589793", "3.1415926535897936", "3.1415926535897927")):
            data = archive.from_files({"stdout": f'{{"x": {x}}}\n'.encode()})
            report = protocol.ResultReport(replica_id=leased[h], exit_code=0,
                                           result_sha256=hashlib.sha256(data).hexdigest(), inline=data)
            assert await d.report(h, [report]) == {leased[h]: "accepted"}
        job = await cat.read(jobs_catalog.get, jid)
        assert job.status == "COMPLETED" and {r.validation for r in job.replicas} == {"VALID"}
        assert len(parsed) == 3  # (5 when each comparison reads and parses its results again)
    finally:
        d.stopService()
        await cat.close()
