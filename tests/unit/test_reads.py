"""The read cache (xwpy.server.reads) against a model catalog: whatever the order of reads, commits
and reads that span a commit, what it serves from memory is what the catalog holds now."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from xwpy.server.scheduler.engine import Changes
from xwpy.server.catalog.rows import Job, Replica
from xwpy.server.reads import Reads


def job(job_id: int, status: str = "PENDING", replicas=()) -> Job:
    return Job(job_id, "app", 1, "u", "b", [], [], status, 1, 1, 2, 1, None, None, None, 0.0, None, None,
               list(replicas))


def replica(rid: int, job_id: int, status: str = "ASSIGNED", validation: str = "PENDING") -> Replica:
    return Replica(rid, job_id, 1, status, validation, None, 0.0, 0.0, None, None, None, None, None, None, None)


class Jobs:
    """The catalog's jobs component over a dictionary; ``hold`` parks reads until ``release``."""

    def __init__(self, rows: dict[int, Job]):
        self.rows = rows
        self.hold = False
        self.parked: list[tuple[Deferred, Job | None]] = []
        self.gets = 0

    def get(self, job_id: int) -> Deferred:
        self.gets += 1
        row = self.rows.get(job_id)  # what the database shows when the read runs
        if not self.hold:
            return succeed(row)
        d: Deferred = Deferred()
        self.parked.append((d, row))
        return d

    def release(self, i: int) -> None:
        d, row = self.parked.pop(i)
        d.callback(row)


class FakeCatalog:
    def __init__(self, rows):
        self.jobs = Jobs(rows)


def read(reads: Reads, job_id: int) -> Job | None:
    got = []
    Deferred.fromCoroutine(reads.job(job_id)).addCallback(got.append)
    assert got, "a read that should not wait for the catalog did"
    return got[0]


def test_a_kept_job_is_served_from_memory_until_a_commit_touches_it():
    cat = FakeCatalog({1: job(1, replicas=[replica(10, 1)]), 2: job(2)})
    reads = Reads(cat, Clock())
    assert read(reads, 1) == cat.jobs.rows[1] and read(reads, 2) == cat.jobs.rows[2]
    assert cat.jobs.gets == 2
    read(reads, 1)
    assert cat.jobs.gets == 2  # from memory
    # A replica of job 1 changes (the change names the replica only): job 1 is read again, not job 2.
    cat.jobs.rows[1] = job(1, replicas=[replica(10, 1, "RUNNING")])
    reads.changed(Changes(replicas={10: {"status": "RUNNING"}}))
    assert read(reads, 1).replicas[0].status == "RUNNING"
    read(reads, 2)
    assert cat.jobs.gets == 3
    # A new replica of job 2 names its job.
    cat.jobs.rows[2] = job(2, replicas=[replica(11, 2)])
    reads.changed(Changes(replicas_new=[{"id": 11, "job_id": 2}]))
    assert [r.id for r in read(reads, 2).replicas] == [11]


def test_a_read_that_began_before_a_commit_is_not_kept():
    cat = FakeCatalog({1: job(1)})
    reads = Reads(cat, Clock())
    cat.jobs.hold = True
    got = []
    Deferred.fromCoroutine(reads.job(1)).addCallback(got.append)  # reads PENDING...
    cat.jobs.rows[1] = job(1, "COMPLETED")
    reads.changed(Changes(jobs={1: {"status": "COMPLETED"}}))  # ...a commit lands meanwhile...
    cat.jobs.release(0)
    assert got[0].status == "PENDING"  # ...its caller asked before the commit: fair
    cat.jobs.hold = False
    assert read(reads, 1).status == "COMPLETED"  # but nobody after it gets that answer


def test_an_answer_is_made_once_for_the_kept_row_only():
    cat = FakeCatalog({1: job(1, "COMPLETED")})
    reads = Reads(cat, Clock())
    made = []
    row = read(reads, 1)
    make = lambda j: made.append(j.status) or len(made)  # noqa: E731
    assert reads.answer(row, make) == 1 and reads.answer(row, make) == 1
    reads.changed(Changes(jobs={1: {"error": "x"}}))
    assert reads.answer(row, make) == 2  # no longer the kept row: made afresh, not kept
    assert reads.answer(read(reads, 1), make) == 3 and reads.answer(read(reads, 1), make) == 3


def test_counts_are_read_again_only_after_a_change_of_jobs():
    calls = []

    class Summaries(Jobs):
        def summary(self, *, owner_id, batch):
            calls.append((owner_id, batch))
            return succeed({"PENDING": len(calls)})

    cat = FakeCatalog({})
    cat.jobs = Summaries({})
    reads = Reads(cat, Clock())

    def counts(owner, batch):
        got = []
        Deferred.fromCoroutine(reads.counts(owner, batch)).addCallback(got.append)
        return got[0]

    assert counts(1, "b") == counts(1, "b") == {"PENDING": 1}
    assert counts(None, "b") == {"PENDING": 2}  # every owner's: another key
    reads.changed(Changes(replicas={5: {"status": "RUNNING"}}, hosts={1: {"last_alive": 5.0}}))  # no job changed
    assert counts(1, "b") == {"PENDING": 1}
    reads.changed(Changes(jobs={3: {"status": "RUNNING"}}))
    assert counts(1, "b") == {"PENDING": 3}
    reads.changed(Changes(jobs_new=[{"id": 4}]))
    assert counts(1, "b") == {"PENDING": 4}
    reads.changed(None)
    assert counts(1, "b") == {"PENDING": 5}


# A random history of reads (some parked across commits), commits and evictions.
ops = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(1, 4)),
        st.tuples(st.just("park"), st.integers(1, 4)),
        st.tuples(st.just("release"), st.integers(0, 10)),
        st.tuples(st.just("job"), st.integers(1, 4)),
        st.tuples(st.just("replica"), st.integers(1, 4)),
        st.tuples(st.just("new_replica"), st.integers(1, 4)),
        st.tuples(st.just("everything"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(1, 4))
def test_what_is_kept_is_always_what_the_catalog_holds(history, keep):
    rows = {j: job(j, replicas=[replica(10 * j, j)]) for j in range(1, 5)}
    cat = FakeCatalog(rows)
    reads = Reads(cat, Clock(), keep=keep)
    next_rid = 100
    for op, arg in history:
        if op in ("read", "park"):
            cat.jobs.hold = op == "park"
            Deferred.fromCoroutine(reads.job(arg))
            cat.jobs.hold = False
        elif op == "release":
            if cat.jobs.parked:
                cat.jobs.release(arg % len(cat.jobs.parked))
        elif op == "job":
            rows[arg] = dataclasses.replace(rows[arg], status=rows[arg].status + "+")
            reads.changed(Changes(jobs={arg: {"status": rows[arg].status}}))
        elif op == "replica":
            r = rows[arg].replicas[-1]
            rows[arg] = dataclasses.replace(rows[arg], replicas=[*rows[arg].replicas[:-1],
                                                                 dataclasses.replace(r, status=r.status + "+")])
            # (with a replica of no job kept beside it: the cache looks up the smaller side)
            reads.changed(Changes(replicas={r.id: {"status": "x"}, 9999: {"status": "x"}}))
        elif op == "new_replica":
            rows[arg] = dataclasses.replace(rows[arg], replicas=[*rows[arg].replicas, replica(next_rid, arg)])
            reads.changed(Changes(replicas_new=[{"id": next_rid, "job_id": arg}]))
            next_rid += 1
        else:
            reads.changed(None)
        # What a read would be served from memory is the catalog's row.
        assert all(kept == rows[j] for j, kept in reads._jobs.items())
        assert len(reads._jobs) <= keep
    for j in range(1, 5):
        assert read(reads, j) == rows[j]

