"""Jobs and replicas: listings for people, the scheduler's rebuild, and writing its changes."""

from __future__ import annotations

import sys

from typing import Iterable

from sqlalchemy import func, select
from twisted.internet.defer import Deferred

from xwpy.lifecycle import ACTIVE_NAMES, JobStatus, ReplicaStatus, Validation
from xwpy.server.catalog import bulk
from xwpy.server.catalog.changes import Changes
from xwpy.server.catalog.rows import ActiveJob, ActiveReplica, Job, Replica
from xwpy.server.catalog.schema import app_versions, apps, data, hosts, id_floors, jobs, replicas, share_usage, users

ACTIVE_JOB = ACTIVE_NAMES


def _job(r, reps=()) -> Job:
    return Job(
        r.id, r.name, r.owner_id, r.login, r.batch, r.args, r.inputs, r.status, r.replication, r.quorum,
        r.max_replicas, r.max_errors, r.result_sha256, r.result_size, r.error, r.submitted_at, r.started_at,
        r.finished_at, list(reps), r.after, r.priority or 0,
    )


def _replica(r) -> Replica:
    return Replica(
        r.id, r.job_id, r.host_id, r.status, r.validation, r.verdict, r.lease_expires, r.assigned_at,
        r.started_at, r.finished_at, r.exit_code, r.result_sha256, r.result_size, r.stderr_tail, r.error,
        r.deadline, r.covers, r.checkpoint, r.resume, r.credit,
    )


def _jobs_q():
    return (
        select(jobs, apps.c.name, users.c.login)
        .join(apps, apps.c.id == jobs.c.app_id)
        .join(users, users.c.id == jobs.c.owner_id)
    )


def get(conn, job_id: int) -> Job | None:
    r = conn.execute(_jobs_q().where(jobs.c.id == job_id)).first()
    if r is None:
        return None
    reps = conn.execute(select(replicas).where(replicas.c.job_id == job_id).order_by(replicas.c.id))
    return _job(r, [_replica(x) for x in reps])


def _only(q, *, owner_id: int | None = None, batch: str | None = None, status: str | None = None):
    """``q`` narrowed to one owner's jobs, one batch, one status (None: any)."""
    for column, value in ((jobs.c.owner_id, owner_id), (jobs.c.batch, batch), (jobs.c.status, status)):
        if value is not None:
            q = q.where(column == value)
    return q


def listing(conn, *, owner_id: int | None, batch: str | None, status: str | None, after: int, limit: int) -> list[Job]:
    q = _only(_jobs_q().where(jobs.c.id > after), owner_id=owner_id, batch=batch, status=status)
    return [_job(r) for r in conn.execute(q.order_by(jobs.c.id).limit(limit))]


def summary(conn, *, owner_id: int | None, batch: str | None) -> dict[str, int]:
    q = _only(select(jobs.c.status, func.count()).group_by(jobs.c.status), owner_id=owner_id, batch=batch)
    counts = {s.value: 0 for s in JobStatus}
    counts.update({status: n for status, n in conn.execute(q)})
    return counts


def ids_in_batch(conn, owner_id: int | None, batch: str) -> list[int]:
    q = _only(select(jobs.c.id).where(jobs.c.status.in_(ACTIVE_JOB)), owner_id=owner_id, batch=batch)
    return [r[0] for r in conn.execute(q)]


def ids_of_request(conn, owner_id: int, request: str) -> list[int]:
    q = select(jobs.c.id).where(jobs.c.owner_id == owner_id, jobs.c.request == request).order_by(jobs.c.id)
    return [r[0] for r in conn.execute(q)]


def batch_ids(conn, owner_id: int | None, batch: str) -> list[int]:
    """Every job of a batch, final or not (of one owner, unless None)."""
    return [r[0] for r in conn.execute(_only(select(jobs.c.id), owner_id=owner_id, batch=batch).order_by(jobs.c.id))]


def active_children(conn, job_ids: list[int]) -> dict[int, int]:
    """Active jobs that run after one of these (job graphs): child id -> the parent it names."""
    wanted = set(job_ids)
    out = {}
    q = select(jobs.c.id, jobs.c.after).where(jobs.c.status.in_(ACTIVE_JOB), jobs.c.after.is_not(None))
    for jid, after in conn.execute(q):
        parent = next((p for p in after or () if p in wanted), None)
        if parent is not None and jid not in wanted:
            out[jid] = parent
    return out


def delete(conn, job_ids: list[int]) -> set[str]:
    """Delete these jobs (final ones) and their replicas; the blobs they referred to (inputs,
    results, checkpoints), for the caller to collect those nothing else refers to. Their ids are
    never given again (id_floors)."""
    ids = sorted(set(job_ids))
    shas: set[str] = set()
    top_job = top_rep = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for jid, inputs, result in conn.execute(select(jobs.c.id, jobs.c.inputs, jobs.c.result_sha256)
                                                .where(jobs.c.id.in_(chunk))):
            top_job = max(top_job, jid)
            shas.update(i["sha256"] for i in inputs or () if i.get("sha256"))
            if result:
                shas.add(result)
        q = select(replicas.c.id, replicas.c.result_sha256, replicas.c.checkpoint, replicas.c.resume)
        for rid, *blobs in conn.execute(q.where(replicas.c.job_id.in_(chunk))):
            top_rep = max(top_rep, rid)
            shas.update(b for b in blobs if b)
        conn.execute(replicas.delete().where(replicas.c.job_id.in_(chunk)))
        conn.execute(data.update().where(data.c.job_id.in_(chunk)).values(job_id=None))
        conn.execute(jobs.delete().where(jobs.c.id.in_(chunk)))
    for name, top in (("jobs", top_job), ("replicas", top_rep)):
        if top:
            _raise_floor(conn, name, top + 1)
    return shas


def _raise_floor(conn, name: str, next_id: int) -> None:
    row = conn.execute(select(id_floors.c.next_id).where(id_floors.c.name == name)).first()
    if row is None:
        conn.execute(id_floors.insert().values(name=name, next_id=next_id))
    elif row[0] < next_id:
        conn.execute(id_floors.update().where(id_floors.c.name == name).values(next_id=next_id))


def owners_of(conn, job_ids: list[int]) -> dict[int, int]:
    return dict(conn.execute(select(jobs.c.id, jobs.c.owner_id).where(jobs.c.id.in_(job_ids))).all())


def statuses(conn, job_ids: list[int]) -> dict[int, str]:
    return dict(conn.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(job_ids))).all())


def earned(conn, job_ids: list[int]) -> list[tuple[int, int, str, float | None]]:
    """(job id, host id, validation, credit) of every replica of these jobs: what each earned."""
    out = []
    for chunk in range(0, len(job_ids), 500):
        ids = job_ids[chunk:chunk + 500]
        q = select(replicas.c.job_id, replicas.c.host_id, replicas.c.validation, replicas.c.credit)
        out += [tuple(r) for r in conn.execute(q.where(replicas.c.job_id.in_(ids)).order_by(replicas.c.id))]
    return out


def replica_statuses(conn, host_id: int, replica_ids: list[int]) -> dict[int, str]:
    """The stored status of these replicas of HOST_ID (others, and unknown ids, are absent): why a
    result the scheduler no longer holds is refused (an ABORTED one: its job no longer needed it)."""
    out = {}
    for chunk in range(0, len(replica_ids), 500):
        q = select(replicas.c.id, replicas.c.status).where(replicas.c.id.in_(replica_ids[chunk:chunk + 500]),
                                                          replicas.c.host_id == host_id)
        out.update({r.id: r.status for r in conn.execute(q)})
    return out


def ends(conn, job_ids: list[int]) -> list[tuple[int, int, str, str | None]]:
    """(id, owner id, status, certified result's sha256) of these jobs: how they ended."""
    return bulk.select_by_ids(conn, jobs, ("owner_id", "status", "result_sha256"), sorted(set(job_ids)))


def specs(conn, job_ids: Iterable[int]) -> dict[int, tuple[int, list, list]]:
    """What a worker needs to run these jobs: (app id, args, inputs) by job id."""
    rows = bulk.select_by_ids(conn, jobs, ("app_id", "args", "inputs"), sorted(set(job_ids)))
    results = _parent_results(conn, [inputs for _, _, _, inputs in rows])
    return {job_id: (app_id, args, _resolved(inputs, results)) for job_id, app_id, args, inputs in rows}


def _parent_results(conn, inputs_lists) -> dict[int, tuple[str | None, int | None]]:
    """(result sha256, size) of the jobs whose results these inputs stage (job graphs)."""
    parents = sorted({i["job"] for inputs in inputs_lists for i in inputs if "job" in i})
    if not parents:
        return {}
    rows = bulk.select_by_ids(conn, jobs, ("result_sha256", "result_size"), parents)
    return {jid: (sha, size) for jid, sha, size in rows}


def _resolved(inputs: list, results: dict[int, tuple[str | None, int | None]]) -> list:
    """Inputs with those from a parent's result made plain: the certified archive's sha256, and
    the member of it to stage (a job is dispatched only once its parents are certified)."""
    if not results:
        return inputs
    out = []
    for i in inputs:
        if "job" in i:
            sha, size = results.get(i["job"], (None, None))
            i = {"name": i["name"], "sha256": sha, "size": size, "member": i.get("member")}
        out.append(i)
    return out


def blobs_of(conn, job_ids: list[int]) -> set[str]:
    """The inputs, app bundles and images of these jobs: what a host running them may download."""
    q = (
        select(jobs.c.inputs, apps.c.id, apps.c.bundle_sha256, apps.c.image)
        .join(apps, apps.c.id == jobs.c.app_id)
        .where(jobs.c.id.in_(job_ids))
    )
    out: set[str] = set()
    app_ids: set[int] = set()
    found = list(conn.execute(q))
    results = _parent_results(conn, [inputs for inputs, *_ in found])
    for inputs, app_id, bundle, image in found:
        out.update(i["sha256"] for i in _resolved(inputs, results) if i.get("sha256"))
        app_ids.add(app_id)
        out.update(_version_blobs(bundle, image))
    versions = select(app_versions.c.bundle_sha256, app_versions.c.image).where(app_versions.c.app_id.in_(app_ids))
    for bundle, image in conn.execute(versions):
        out.update(_version_blobs(bundle, image))
    return out


def _version_blobs(bundle: str | None, image: dict | None) -> list[str]:
    return [b for b in (bundle, image["sha256"] if image else None) if b]


# -- the scheduler's rebuild ----------------------------------------------------------------------


def load_active(conn) -> tuple[list[ActiveJob], list[ActiveReplica], int, int]:
    """The active jobs and their replicas, plus the next free ids: what the scheduler rebuilds from."""
    q = select(
        jobs.c.id, jobs.c.owner_id, jobs.c.app_id, jobs.c.status, jobs.c.replication, jobs.c.quorum, jobs.c.max_replicas,
        jobs.c.max_errors, jobs.c.memory, jobs.c.visibility, jobs.c.vis_group, jobs.c.adaptive, jobs.c.solo,
        jobs.c.disk, jobs.c.after, jobs.c.priority, jobs.c.batch,
    ).where(jobs.c.status.in_(ACTIVE_JOB))
    job_rows = [
        ActiveJob(r.id, r.owner_id, r.app_id, JobStatus(r.status), r.replication, r.quorum, r.max_replicas,
                  r.max_errors, r.memory, r.visibility, r.vis_group, bool(r.adaptive), bool(r.solo), r.disk or 0,
                  tuple(r.after or ()), r.priority or 0, sys.intern(r.batch) if r.batch else r.batch)
        for r in conn.execute(q)
    ]
    q = (
        select(replicas)
        .join(jobs, jobs.c.id == replicas.c.job_id)
        .where(jobs.c.status.in_(ACTIVE_JOB))
        .order_by(replicas.c.id)
    )
    reps = [
        ActiveReplica(r.id, r.job_id, r.host_id, ReplicaStatus(r.status), r.lease_expires, r.result_sha256,
                      r.result_size or 0, r.verdict, Validation(r.validation), r.deadline, r.covers, r.checkpoint,
                      r.resume, r.origin, r.assigned_at, r.finished_at, tuple(r.equivalent or ()))
        for r in conn.execute(q)
    ]
    floors = dict(conn.execute(select(id_floors.c.name, id_floors.c.next_id)).all())
    next_job = max((conn.execute(select(func.max(jobs.c.id))).scalar() or 0) + 1, floors.get("jobs", 1))
    next_rep = max((conn.execute(select(func.max(replicas.c.id))).scalar() or 0) + 1, floors.get("replicas", 1))
    return job_rows, reps, next_job, next_rep


# -- writing the scheduler's changes --------------------------------------------------------------


_ACTIVE_REPLICA = tuple(s.value for s in ReplicaStatus if s.active)


def job_guard(keys: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The scheduler changes only jobs that are not final: a final one is never written again."""
    return (("status", tuple(ACTIVE_JOB)),)


def replica_guard(keys: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A replica's status changes only while it is active, its validation only while pending
    (lifecycle/replica.py); its lease, progress or credit whenever."""
    out = []
    if "status" in keys:
        out.append(("status", _ACTIVE_REPLICA))
    if "validation" in keys:
        out.append(("validation", (Validation.PENDING.value,)))
    return tuple(out)


def apply(conn, ch: Changes) -> None:
    """Write a Changes record (the scheduler's): inserts first, then updates, each as multi-row
    statements; the updates only of rows in the states the scheduler believed (StaleWrite if not)."""
    bulk.insert_rows(conn, jobs, ch.jobs_new)
    bulk.insert_rows(conn, replicas, ch.replicas_new)
    bulk.update_rows(conn, jobs, ch.jobs, guard=job_guard)
    bulk.update_rows(conn, replicas, ch.replicas, guard=replica_guard)
    bulk.update_rows(conn, hosts, ch.hosts)
    if ch.usage:  # (a row per user whose jobs ended in this batch: replaced)
        conn.execute(share_usage.delete().where(share_usage.c.owner_id.in_(list(ch.usage))))
        bulk.insert_rows(conn, share_usage, [{"owner_id": o, **u} for o, u in ch.usage.items()])


def load_usage(conn) -> dict[int, tuple[float, float]]:
    """Each user's recent usage (fair share) as last written: owner id -> (recent, at)."""
    return {r.owner_id: (r.recent, r.at) for r in conn.execute(select(share_usage))}


def newest(conn, *, owner_id: int | None, batch: str | None, status: str | None, limit: int) -> list[Job]:
    """The last ``limit`` jobs submitted (newest first): what a dashboard shows."""
    q = _only(_jobs_q(), owner_id=owner_id, batch=batch, status=status)
    return [_job(r) for r in conn.execute(q.order_by(jobs.c.id.desc()).limit(limit))]


def by_batch(conn, *, owner_id: int | None, limit: int) -> list[tuple[str, dict[str, int]]]:
    """Job counts by status for each of the ``limit`` most recently started batches (newest
    first; jobs submitted without a batch are under "")."""
    q = _only(select(func.coalesce(jobs.c.batch, ""), jobs.c.status, func.count(), func.max(jobs.c.id)).group_by(
        func.coalesce(jobs.c.batch, ""), jobs.c.status), owner_id=owner_id)
    out: dict[str, dict[str, int]] = {}
    last: dict[str, int] = {}
    for batch, status, n, top in conn.execute(q):
        out.setdefault(batch, {s.value: 0 for s in JobStatus})[status] = n
        last[batch] = max(last.get(batch, 0), top)
    return [(b, out[b]) for b in sorted(out, key=lambda b: -last[b])[:limit]]


def valid_by_host(conn, host_ids: list[int]) -> dict[int, int]:
    """Replicas each host ran whose result was found valid: the work it has done for the grid."""
    if not host_ids:
        return {}
    q = (select(replicas.c.host_id, func.count())
         .where(replicas.c.host_id.in_(host_ids), replicas.c.validation == Validation.VALID.value)
         .group_by(replicas.c.host_id))
    return dict(conn.execute(q).all())


class JobsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def get(self, job_id: int) -> Deferred:
        return self.catalog.read(get, job_id)

    def list(self, **kw) -> Deferred:
        return self.catalog.read(lambda conn: listing(conn, **kw))

    def summary(self, **kw) -> Deferred:
        return self.catalog.read(lambda conn: summary(conn, **kw))

    def summary_in_order(self, **kw) -> Deferred:
        """:func:`summary` read in the writer's queue: it holds exactly the writes queued before
        it, and its answer is delivered after theirs and before those of the writes queued after
        it (a count kept up to date from then on by each change: server/reads.py)."""
        return self.catalog.write(lambda conn: summary(conn, **kw))

    def newest(self, **kw) -> Deferred:
        return self.catalog.read(lambda conn: newest(conn, **kw))

    def by_batch(self, *, owner_id: int | None, limit: int) -> Deferred:
        return self.catalog.read(lambda conn: by_batch(conn, owner_id=owner_id, limit=limit))

    def valid_by_host(self, host_ids: list[int]) -> Deferred:
        return self.catalog.read(valid_by_host, host_ids)

    def ids_in_batch(self, owner_id: int | None, batch: str) -> Deferred:
        return self.catalog.read(ids_in_batch, owner_id, batch)

    def ids_of_request(self, owner_id: int, request: str) -> Deferred:
        return self.catalog.read(ids_of_request, owner_id, request)

    def batch_ids(self, owner_id: int | None, batch: str) -> Deferred:
        return self.catalog.read(batch_ids, owner_id, batch)

    def active_children(self, job_ids: list[int]) -> Deferred:
        return self.catalog.read(active_children, job_ids)

    def delete(self, job_ids: list[int]) -> Deferred:
        return self.catalog.write(delete, job_ids)

    def owners_of(self, job_ids: list[int]) -> Deferred:
        return self.catalog.read(owners_of, job_ids)

    def blobs_of(self, job_ids: list[int]) -> Deferred:
        return self.catalog.read(blobs_of, job_ids)

    def statuses(self, job_ids: list[int]) -> Deferred:
        return self.catalog.read(statuses, job_ids)

    def ends(self, job_ids: list[int]) -> Deferred:
        return self.catalog.read(ends, job_ids)

    def earned(self, job_ids: list[int]) -> Deferred:
        return self.catalog.read(earned, sorted(set(job_ids)))

    def load_usage(self) -> Deferred:
        return self.catalog.read(load_usage)

    def load_active(self) -> Deferred:
        return self.catalog.read(load_active)
