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


STATUSES = ("PENDING", "RUNNING", "COMPLETED", "ERROR", "CANCELLED")


class Counted(Jobs):
    """Jobs as (owner, batch, status) rows; ``summary_in_order`` counts them as the writer's
    queue would (what is committed when it runs), delivered when ``deliver`` says."""

    def __init__(self):
        super().__init__({})
        self.table: dict[int, list] = {}
        self.reads = 0
        self.pending: list[tuple[Deferred, dict]] = []

    def count(self, owner_id, batch) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for o, b, status in self.table.values():
            if (owner_id is None or o == owner_id) and (batch is None or b == batch):
                out[status] += 1
        return out

    def summary_in_order(self, *, owner_id, batch):
        self.reads += 1
        d: Deferred = Deferred()
        self.pending.append((d, self.count(owner_id, batch)))
        return d

    def deliver(self) -> None:
        while self.pending:
            d, result = self.pending.pop(0)
            d.callback(result)


def counts_now(reads: Reads, owner, batch):
    got = []
    Deferred.fromCoroutine(reads.counts(owner, batch)).addCallback(got.append)
    return got[0] if got else None


KEYS = [(None, None), (1, None), (2, None), (None, "a"), (1, "a"), (2, "a"), (1, "b"), (None, None)]


def test_counts_are_read_once_then_kept_exact_by_each_change():
    cat = FakeCatalog({})
    cat.jobs = jobs = Counted()
    reads = Reads(cat, Clock())
    jobs.table[1] = [1, "a", "PENDING"]
    assert counts_now(reads, 1, "a") is None  # read in the writer's queue: not delivered yet
    assert counts_now(reads, 1, "a") is None
    jobs.deliver()
    assert jobs.reads == 1  # one read for both callers
    assert counts_now(reads, 1, "a")["PENDING"] == 1
    # A new job, then a move, each committed: counted without a read.
    jobs.table[2] = [1, "a", "PENDING"]
    reads.changed(Changes(jobs_new=[{"id": 2, "owner_id": 1, "batch": "a", "status": "PENDING"}]))
    jobs.table[1][2] = "RUNNING"
    reads.changed(Changes(jobs={1: {"status": "RUNNING"}}, moves=[(1, "a", "PENDING", "RUNNING")]))
    assert counts_now(reads, 1, "a") == jobs.count(1, "a") and jobs.reads == 1
    answer = counts_now(reads, 1, "a")
    answer["PENDING"] = 99  # a caller's copy
    assert counts_now(reads, 1, "a") == jobs.count(1, "a")
    reads.changed(None)  # (jobs deleted) read again
    assert counts_now(reads, 1, "a") is None
    jobs.deliver()
    assert counts_now(reads, 1, "a") == jobs.count(1, "a") and jobs.reads == 2
    # A read that fails (the catalog unavailable) fails its callers, is not kept, and is tried again.
    failed = []
    Deferred.fromCoroutine(reads.counts(2, None)).addErrback(failed.append)
    Deferred.fromCoroutine(reads.counts(2, None)).addErrback(failed.append)
    d, _ = jobs.pending.pop()
    d.errback(RuntimeError("catalog unavailable"))
    assert [f.check(RuntimeError) for f in failed] == [RuntimeError, RuntimeError]
    assert counts_now(reads, 2, None) is None and jobs.reads == 4
    jobs.deliver()
    assert counts_now(reads, 2, None) == jobs.count(2, None)


# A random history of submissions, status moves, deletions, count reads and evictions. A read is
# delivered at a random later point, but before any commit queued after it (the writer's order).
count_ops = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.sampled_from([1, 2]), st.sampled_from(["a", "b", None])),
        st.tuples(st.just("move"), st.integers(0, 30), st.sampled_from(STATUSES[1:])),
        st.tuples(st.just("read"), st.integers(0, len(KEYS) - 1), st.just(None)),
        st.tuples(st.just("deliver"), st.just(0), st.just(None)),
        st.tuples(st.just("delete"), st.integers(0, 30), st.just(None)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(count_ops, st.integers(1, 4))
def test_counts_kept_are_always_what_the_catalog_counts(history, keep):
    import xwpy.server.reads as reads_module

    cat = FakeCatalog({})
    cat.jobs = jobs = Counted()
    reads = Reads(cat, Clock())
    old, reads_module.KEEP_COUNTS = reads_module.KEEP_COUNTS, keep
    try:
        next_id = 1
        for op, a, b in history:
            if op in ("new", "move", "delete"):
                jobs.deliver()  # the reads queued before this commit are answered before it
            if op == "new":
                jobs.table[next_id] = [a, b, "PENDING"]
                reads.changed(Changes(jobs_new=[{"id": next_id, "owner_id": a, "batch": b, "status": "PENDING"}]))
                next_id += 1
            elif op == "move":
                active = [j for j, row in jobs.table.items() if row[2] in ("PENDING", "RUNNING")]
                if not active:
                    continue
                jid = active[a % len(active)]
                owner, batch, before = jobs.table[jid]
                if before == "RUNNING" and b == "RUNNING":
                    continue
                jobs.table[jid][2] = b
                reads.changed(Changes(jobs={jid: {"status": b}}, moves=[(owner, batch, before, b)]))
            elif op == "read":
                counts_now(reads, *KEYS[a])
            elif op == "deliver":
                jobs.deliver()
            else:
                if jobs.table:
                    del jobs.table[sorted(jobs.table)[a % len(jobs.table)]]
                    reads.changed(None)
            assert len(reads._counts) <= keep
            for key, kept in reads._counts.items():
                assert kept == jobs.count(*key), key
        jobs.deliver()
        for key in KEYS:
            got = counts_now(reads, *key)
            if got is None:
                jobs.deliver()
                got = counts_now(reads, *key)
            assert got == jobs.count(*key)
    finally:
        reads_module.KEEP_COUNTS = old


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

