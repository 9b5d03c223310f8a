"""The catalog's leader lease and the fence on every write, against a real database (SQLite: the
lock file; PostgreSQL: the advisory lock, the lease's expiry in the database's clock, eviction)."""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from twisted.internet import reactor

from xwpy import tokens
from xwpy.server.catalog import jobs as jobs_catalog
from xwpy.server.catalog import lease
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.bulk import StaleWrite
from xwpy.server.catalog.changes import Changes
from xwpy.server.catalog.connector import Catalog, CatalogFenced, make_engine
from xwpy.server.catalog import revision


@given(st.booleans(), st.booleans())
def test_decide(locked, expired):
    action = lease.decide(locked, expired)
    # The lock decides: whoever holds it leads; without it, only an expired holder is evicted.
    assert (action is lease.Action.LEAD) == locked
    assert (action is lease.Action.EVICT) == (not locked and expired)


def await_condition(predicate, timeout: float, what: str):
    """Poll until ``predicate()`` is true (the database's clock decides when a lease ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def engines(catalog_url):
    made = []

    def new(name: str | None = None):
        eng = make_engine(catalog_url, session_name=name)
        made.append(eng)
        return eng

    revision.open_or_create(new())
    yield new
    for eng in made:
        eng.dispose()


def test_one_leads_the_other_waits_until_it_lets_go(engines):
    a_name, b_name = lease.session_name(), lease.session_name()
    a = lease.for_engine(engines(a_name), a_name, ttl=60)
    b = lease.for_engine(engines(b_name), b_name, ttl=60)
    first = a.try_lead()
    assert first.epoch == 1 and first.holder == a.holder
    for _ in range(3):  # however often it asks
        seen = b.try_lead()
        assert seen.epoch is None and seen.holder == a.holder and seen.their_epoch == 1 and not seen.evicted
    a.renew()
    a.release()
    assert b.try_lead().epoch == 2
    assert lease.current(engines()) == (2, b.holder)


@pytest_twisted.ensureDeferred
async def test_writes_of_a_replaced_leader_are_refused(catalog_url, engines):
    name = lease.session_name()
    old_lease = lease.for_engine(engines(name), name, ttl=60)
    epoch = old_lease.try_lead().epoch
    cat = Catalog.open(catalog_url, reactor, session_name=name)
    told = []
    cat.on_fenced = told.append
    try:
        cat.fence(epoch)
        await cat.write(add_user, "before")
        old_lease.release()  # (as if it had been paused past its lease and evicted)
        other = lease.for_engine(engines(), "other", ttl=60)
        assert other.try_lead().epoch == epoch + 1
        for login in ("after", "again"):
            with pytest.raises(CatalogFenced, match=rf"epoch {epoch + 1}, this coordinator's was {epoch}"):
                await cat.write(add_user, login)
        with pytest.raises(CatalogFenced):
            await cat.write(add_user, "scheduler", engine=True)
        await cat.read(lambda conn: None)  # (the notice is delivered on the reactor thread by then)
        assert len(told) == 1
        logins = await cat.read(lambda conn: [r[0] for r in conn.execute(text("SELECT login FROM users"))])
        assert logins == ["before"]
    finally:
        await cat.close()


def add_user(conn, login):
    return users_catalog.insert(conn, login=login, role="user", group="", token_hash=tokens.token_hash(login), now=1.0)


@pytest.fixture
def pg_url(catalog_url):
    if not catalog_url.startswith("postgresql"):
        pytest.skip("a silent leader is evicted on PostgreSQL only (SQLite: its lock file is held until it ends)")
    return catalog_url


def test_a_silent_leader_is_evicted_once_its_lease_ran_out(pg_url, engines):
    """The leader's process is alive but silent (its sessions open, one of them in the middle of a
    write holding the leadership row): the standby waits while the lease runs, then ends the
    leader's sessions and takes over; the old leader's next renewal and writes are refused."""
    a_name, b_name = lease.session_name(), lease.session_name()
    a_engine = engines(a_name)
    a = lease.for_engine(a_engine, a_name, ttl=1.0)
    b = lease.for_engine(engines(b_name), b_name, ttl=60)
    epoch = a.try_lead().epoch
    writing = a_engine.connect()  # a write transaction of the leader, frozen after its fence check
    tx = writing.begin()
    lease.check(writing, epoch)
    standby = engines()
    assert b.try_lead().epoch is None  # the lease still runs: wait
    await_condition(lambda: b.try_lead().evicted, 30, "the leader's lease to run out")
    seen = await_condition(lambda: b.try_lead().epoch, 30, "the standby to lead")
    assert lease.current(standby)[0] == epoch + 1
    with pytest.raises(Exception):  # its session was ended
        lease.check(writing, epoch)
        tx.commit()
    writing.close()
    with pytest.raises(lease.Fenced):
        a.renew()
    with a_engine.connect() as conn, pytest.raises(lease.Fenced):
        lease.check(conn, epoch)
    assert seen


def test_a_late_error_never_overwrites_a_completed_job(catalog_url, engines):
    eng = engines()
    with eng.begin() as conn:
        owner = add_user(conn, "owner")
        conn.execute(text("INSERT INTO apps (id, name, owner_id, access, command, limits, validator, replication, "
                          "quorum, created_at) VALUES (1, 'a', :o, 'public', '[]', '{}', 'quorum', 2, 2, 0)"), {"o": owner})
        conn.execute(text("INSERT INTO jobs (id, app_id, owner_id, args, inputs, status, replication, quorum, "
                          "max_replicas, max_errors, memory, visibility, vis_group, submitted_at) VALUES "
                          "(1, 1, :o, '[]', '[]', 'COMPLETED', 2, 2, 4, 2, 0, 'public', '', 0),"
                          " (2, 1, :o, '[]', '[]', 'RUNNING', 2, 2, 4, 2, 0, 'public', '', 0)"), {"o": owner})
    ch = Changes()
    ch.job(1, status="ERROR", error="late")
    ch.job(2, status="ERROR", error="late")
    with pytest.raises(StaleWrite, match="1 of 2 jobs rows"):
        with eng.begin() as conn:
            jobs_catalog.apply(conn, ch)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT id, status FROM jobs ORDER BY id")).all() == [(1, "COMPLETED"), (2, "RUNNING")]
