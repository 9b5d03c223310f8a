"""The scheduler's in-memory engine: the active part of the catalog, and every decision on it.

The engine holds the jobs that are not final, their replicas and the hosts; it does no I/O. Each
operation mutates that state and returns a :class:`~xwpy.server.catalog.changes.Changes` record —
the rows to write, in the catalog's own column names (the scheduler sits above the catalog). The
dispatcher writes the record in one transaction before it answers anyone, so the catalog always
holds everything the engine knows that the outside world has heard of; the engine can be rebuilt
from the catalog at any time (:meth:`Engine.load`), and is, at start and after a failed write.

Being free of I/O and clocks (``now`` is passed in), the engine is driven directly by the property
tests that check the scheduler's invariants.
"""

from __future__ import annotations


import hashlib
import heapq
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from xwpy.lifecycle import JobStatus, ReplicaStatus, Validation
from xwpy.lifecycle import job as job_fsm
from xwpy.lifecycle import replica as replica_fsm
from xwpy.protocol import DEFAULT_DEADLINE
from xwpy.server.catalog.changes import Changes
from xwpy.server.catalog.rows import ActiveJob, ActiveReplica
from xwpy.server.scheduler import capacity
from xwpy.server.scheduler import credit as credit_mod
from xwpy.server.scheduler import graph
from xwpy.server.scheduler import policy as pol
from xwpy.server.scheduler import shares as shares_mod
from xwpy.server.scheduler import silence
from xwpy.server.scheduler import why as why_mod
from xwpy.server.scheduler.quorum import SOLO, Decision, Policy, ReplicaView, Tally, agreement, decide
from xwpy.verify import Verdict

# Replicas that gave no result: their hosts may take the job again (see policy).
_NO_VOTE = frozenset({ReplicaStatus.LOST, ReplicaStatus.ABORTED, ReplicaStatus.FAILED})
_NONE: frozenset = frozenset()
_READY = graph.Step(ready=True)  # every job it runs after is certified

# How deep to look into one owner's queue for a job a host may take, per slot: bounds the cost of
# a work request when the head of the queue is full of jobs this host already ran.
SCAN_LIMIT = 64
# The cores of a host whose worker did not say (an earlier xwpy): its slots bound it instead.
UNSAID_CORES = 1 << 12


@dataclass(slots=True)
class ReplicaState:
    id: int
    job_id: int
    host_id: int
    status: ReplicaStatus
    lease_expires: float
    digest: str | None = None
    size: int = 0
    verdict: Verdict | None = None
    validation: Validation = Validation.PENDING
    progress: float | None = None  # the fraction done its job last reported (heartbeats; not stored)
    # Its worker ran it to the end and keeps its result to report (not stored): it holds none of
    # its host's cores or memory any more (_room).
    ran: bool = False
    # When the scheduler stops waiting for it, its host asleep or not (None: its lease only: a
    # replica of an earlier xwpy). See silence.py.
    deadline: float | None = None
    covers: int | None = None  # the replica of a silent host it was started beside (silence.extras)
    # Checkpoints (apps registered with --checkpoints upload): its latest uploaded, the one it was
    # started from, and the replica whose work it continues (its result is not an independent vote
    # beside that one's: quorum.ReplicaView.origin).
    checkpoint: str | None = None
    resume: str | None = None
    origin: int | None = None
    # When it was assigned and when its result came: its run seconds, the credit it may earn (credit.py).
    assigned_at: float = 0.0
    finished_at: float | None = None
    # The digests of earlier results of its job its app's comparator found equivalent (quorum.py).
    equivalent: frozenset[str] = frozenset()

    @classmethod
    def of(cls, row: ActiveReplica) -> "ReplicaState":
        """A replica of an active job as the catalog holds it (the scheduler's rebuild)."""
        return cls(id=row.id, job_id=row.job_id, host_id=row.host_id, status=row.status,
                   lease_expires=row.lease_expires, digest=row.digest, size=row.size,
                   verdict=Verdict(row.verdict) if row.verdict else None, validation=row.validation,
                   deadline=row.deadline, covers=row.covers, checkpoint=row.checkpoint, resume=row.resume,
                   origin=row.origin, assigned_at=row.assigned_at, finished_at=row.finished_at,
                   equivalent=frozenset(row.equivalent or ()))


@dataclass(slots=True)
class JobState:
    id: int
    owner_id: int
    app_id: int
    policy: Policy
    visibility: pol.Visibility
    memory: int
    status: JobStatus
    # A pending job has no replicas: the shared empty tuple until the first one (memory: a
    # coordinator may hold a hundred thousand pending jobs).
    replicas: list[ReplicaState] | tuple = ()
    wanted: int = 0
    in_queue: bool = False
    last_stderr: str = ""
    solo: bool = False  # adaptive replication: its one replica went to a trusted host
    stuck_since: float | None = None  # no host alive may take it since then (policy: no quorum)
    disk: int = 0  # bytes: its inputs' sizes, summed (capacity.Need.disk)
    # Silent replicas whose extra replica is wanted (part of ``wanted``), and since when.
    extra_for: list[int] | tuple = ()
    extra_since: float = 0.0
    # Job graphs: the jobs it runs after that are not certified yet (held while any is; graph.py).
    waiting: set[int] | tuple = ()
    priority: int = 0  # higher first among its owner's jobs (then the oldest first)
    batch: str | None = None  # its batch (what changes of its status count for: server/reads.py)
    # Its results counted so far (quorum.Tally: a memo, so each decision counts only the new ones);
    # None until its first decision.
    tally: Tally | None = None

    @property
    def hosts_used(self) -> set[int]:
        """Hosts that hold a replica of this job or gave a result for it. A host whose replica was
        lost (it crashed, or gave it back) or failed gave nothing and may try again — else a small
        pool whose hosts all restarted (or failed) once could never finish the job."""
        if not self.replicas:  # most jobs a work request looks at: pending ones
            return _NONE
        return {r.host_id for r in self.replicas if r.status not in _NO_VOTE}

    @classmethod
    def of(cls, row: ActiveJob) -> "JobState":
        """An active job as the catalog holds it (the scheduler's rebuild)."""
        return cls(
            id=row.id, owner_id=row.owner_id, app_id=row.app_id,
            policy=Policy(row.replication, row.quorum, row.max_replicas, row.max_errors, adaptive=row.adaptive),
            visibility=pol.Visibility.of_row(row.visibility, row.owner_id, row.vis_group),
            memory=row.memory, status=row.status, solo=row.solo, disk=row.disk, priority=row.priority,
            waiting=set(row.after) if row.after else (), batch=row.batch,
        )

    def add_replica(self, r: ReplicaState) -> None:
        if self.replicas:
            self.replicas.append(r)
        else:
            self.replicas = [r]


@dataclass(slots=True)
class HostState:
    id: int
    owner_id: int
    group: str
    memory: int
    reputation: int = 0
    last_alive: float = 0.0
    active: set[int] = field(default_factory=set)
    # Counted as alive until then whatever its last sign of life: set at load for the hosts that
    # were alive when the coordinator stopped (they could not reach it while it was away).
    presumed_until: float = 0.0
    cores: int = 0  # what its volunteer lends (0: not said, by a worker of an earlier xwpy)
    platform: str = ""
    images: bool = False
    network: bool = False
    suspended: str = ""  # why its worker suspended its jobs, as its last heartbeat said
    disk: int = 0  # bytes of inputs its volunteer's disk budget holds (capacity.Offer.disk; 0: not said)
    revoked: bool = False  # its token was revoked: it is gone for good
    owner_disabled: bool = False  # its volunteer's account is disabled: gone until enabled again
    credit: float = 0.0  # run seconds of the work it certified, earned so far (credit.py)

    def alive(self, now: float, lease_seconds: float) -> bool:
        """THE definition of a host alive: a sign of life within one lease, or presumed alive
        (it could not reach a coordinator that was away); never once revoked, nor while its
        volunteer's account is disabled."""
        return not self.revoked and not self.owner_disabled and (self.last_alive >= now - lease_seconds or self.presumed_until >= now)

    def view(self) -> pol.HostView:
        offer = capacity.Offer(self.cores or UNSAID_CORES, self.memory, self.platform, self.images, self.network,
                               self.disk)
        return pol.HostView(self.id, self.owner_id, self.group, self.memory, offer)


@dataclass(slots=True)
class NewJob:
    owner_id: int
    app_id: int
    policy: Policy
    visibility: pol.Visibility
    memory: int
    row: dict  # the catalog row, less id and status
    disk: int = 0  # bytes: its inputs' sizes, summed
    # Job graphs: the jobs it runs after, by id (submitted before) and by index among the jobs
    # submitted with it; results staged from them are in ``row["inputs"]`` with "job" (an id) or
    # "new" (such an index), which the engine turns into the id.
    after: tuple[int, ...] = ()
    after_new: tuple[int, ...] = ()
    priority: int = 0  # higher first among its owner's jobs


@dataclass(slots=True)
class Report:
    replica_id: int
    ok: bool  # the job exited 0 and its result archive is stored
    digest: str | None = None
    size: int = 0
    verdict: Verdict | None = None
    exit_code: int | None = None
    stderr_tail: str = ""
    error: str = ""
    equivalent: frozenset[str] = frozenset()  # digests of the job's earlier results found equivalent


class Engine:
    def __init__(self, *, lease_seconds: float, trust_threshold: int = 10, spot_check: float = 0.1,
                 salt: bytes | None = None, patience: float | None = None, apps: Callable[[int], Any] | None = None,
                 silent_leases: float = silence.SILENT_LEASES, share: Callable[[int], float] | None = None,
                 usage_half_life: float = shares_mod.DEFAULT_HALF_LIFE):
        self.lease_seconds = lease_seconds
        # Fair share (shares.py): each owner's share (by user id), and how fast past usage is forgotten.
        self.share = share or (lambda owner_id: 1.0)
        self.usage_half_life = usage_half_life
        self.silent_leases = silent_leases  # before a silent host's work gets an extra replica (silence.py)
        # How long a tried job that no host alive may take waits before it ends in ERROR (policy).
        self.patience = lease_seconds if patience is None else patience
        # Consecutive valid results that make a host trusted (after each lie caught, that many more).
        self.trust_threshold = trust_threshold
        self.spot_check = spot_check  # share of a trusted host's jobs replicated all the same
        # Spot checks must be unpredictable to volunteers, or a liar would lie only when unchecked.
        self._salt = salt if salt is not None else os.urandom(16)
        # What each app's jobs need besides their memory (cores, the app's versions), from the
        # apps as the caller knows them now (an app gains versions); cached per app object.
        self._apps = apps
        self._clear()

    def _clear(self) -> None:
        """Forget all state (not the settings): as new, before a load."""
        self._watch: set[int] = set()  # tried jobs wanting replicas with none running: stuck?
        self.jobs: dict[int, JobState] = {}
        self.replicas: dict[int, ReplicaState] = {}
        self.hosts: dict[int, HostState] = {}
        # owner id -> heap of (-priority, job id) of the jobs wanting replicas: highest priority, then oldest
        self._ready: dict[int, list[tuple[int, int]]] = {}
        self._running: dict[int, int] = {}  # owner id -> active replicas
        # owner id -> recent usage; stored as each owner's jobs end (Changes.usage), given back at load
        self._usage: dict[int, shares_mod.Usage] = {}
        self.active_by_owner: dict[int, int] = {}  # owner id -> jobs not final (quotas)
        self._interned: dict = {}  # policies and visibilities, shared by the jobs that have them
        self._children: dict[int, list[int]] = {}  # job id -> active jobs held until it is certified
        self.next_job_id = 1
        self.next_replica_id = 1
        self._needs: dict[tuple[int, int], tuple[object, capacity.Need]] = {}
        # The volunteers with a host alive, for the distinct-volunteers rule, overall and by group.
        # Kept current as hosts join and show signs of life (between two refreshes, an undercount
        # would let one volunteer's hosts take several replicas of a job — and outvote the others).
        self._pool: dict[int, str] = {}  # owner id -> group
        self._pool_all = 0
        self._pool_groups: dict[str, int] = {}
        self._pool_horizon = float("-inf")  # alive: a sign of life since then

    # -- loading -------------------------------------------------------------------------------

    def load(
        self,
        *,
        hosts: Iterable[HostState],
        jobs: Iterable[JobState],
        replicas: Iterable[ReplicaState],
        next_job_id: int,
        next_replica_id: int,
        now: float,
        ended: dict[int, JobStatus] | None = None,
        usage: dict[int, shares_mod.Usage] | None = None,
    ) -> Changes:
        """Rebuild from the catalog. Leases still open get a grace period (their hosts could not
        reach us while we were away); replicas whose hosts are unknown are lost. ``ended``: the
        statuses of the final jobs that active ones run after (job graphs); ``usage``: each
        owner's recent usage as last stored (fair share goes on from it)."""
        self._clear()
        self._usage = dict(usage or {})
        self.next_job_id, self.next_replica_id = next_job_id, next_replica_id
        hosts = list(hosts)
        # The hosts alive when we stopped are presumed alive for one more lease: after a long outage
        # the first host to reconnect must not find itself its volunteer's only competition.
        latest = max((h.last_alive for h in hosts), default=0.0)
        for h in hosts:
            if h.last_alive >= latest - self.lease_seconds:
                h.presumed_until = max(h.presumed_until, now + self.lease_seconds)
            self.hosts[h.id] = h
        for j in jobs:
            j.policy = self._intern(j.policy)
            j.visibility = self._intern(j.visibility)
            self.jobs[j.id] = j
            self.active_by_owner[j.owner_id] = self.active_by_owner.get(j.owner_id, 0) + 1
        for r in replicas:
            job = self.jobs.get(r.job_id)
            if job is None:
                continue
            job.add_replica(r)
            host = self.hosts.get(r.host_id)
            self.replicas[r.id] = r
            if r.status.active:
                r.lease_expires = max(r.lease_expires, now + self.lease_seconds)
                if host is not None:
                    host.active.add(r.id)
                self._running[job.owner_id] = self._running.get(job.owner_id, 0) + 1
        self.refresh_pool(now)
        ch = Changes()
        held = [j for j in self.jobs.values() if j.waiting]
        for job in held:
            parents = {p: self._status_of(p, ch, ended or {}) for p in job.waiting}
            self._hold(job, graph.decide(parents), now, ch)
        for job in list(self.jobs.values()):
            if job.id not in self.jobs:  # ended meanwhile: a job it runs after had failed
                continue
            if job.replicas:
                job.replicas.sort(key=lambda r: r.id)
            self._settle(job, now, ch)
        return ch

    def _status_of(self, job_id: int, ch: Changes, ended: dict[int, JobStatus]) -> JobStatus:
        """A job's status at load: active here, ended by this load (ch), or as the catalog says."""
        if job_id in self.jobs:
            return self.jobs[job_id].status
        if "status" in ch.jobs.get(job_id, {}):
            return JobStatus(ch.jobs[job_id]["status"])
        return ended.get(job_id, JobStatus.COMPLETED)

    def _hold(self, job: JobState, step: graph.Step, now: float, ch: Changes) -> None:
        """Apply a graph step to a job not started yet: hold it, start it, or end it."""
        if step.end is not None:
            job.waiting = ()
            self._end(job, JobStatus.CANCELLED, now, ch, error=f"cancelled: {step.end}")
        elif step.ready:
            job.waiting = ()
            job.wanted = job.policy.replication
            self._enqueue(job)
        else:
            job.waiting = set(step.waiting)
            job.wanted = 0
            for p in step.waiting:
                self._children.setdefault(p, []).append(job.id)

    def _intern(self, value):
        return self._interned.setdefault(value, value)

    # -- hosts -------------------------------------------------------------------------------------

    def add_host(self, host: HostState) -> None:
        self.hosts[host.id] = host
        if host.last_alive >= self._pool_horizon:
            self._count(host)

    def touch(self, host_id: int, now: float) -> None:
        """A sign of life from the host (hello, heartbeat, report): it counts in the pool at once.
        Back from silence, its replicas get a lease for its worker to say which it still holds,
        and the extra replicas wanted beside them and not started yet are no longer wanted."""
        host = self.hosts[host_id]
        if not host.alive(now, self.lease_seconds):
            for rid in host.active:
                r = self.replicas[rid]
                r.lease_expires = max(r.lease_expires, now + self.lease_seconds)
                job = self.jobs.get(r.job_id)
                if job is not None and rid in job.extra_for:
                    job.extra_for.remove(rid)
                    job.wanted -= 1
        host.last_alive = now
        self._count(host)

    def _count(self, host: HostState) -> None:
        if host.owner_id not in self._pool:
            self._pool[host.owner_id] = host.group
            self._pool_all += 1
            self._pool_groups[host.group] = self._pool_groups.get(host.group, 0) + 1

    def refresh_pool(self, now: float) -> None:
        """Count the volunteers with a host alive within one lease, overall and by group."""
        self._pool_horizon = now - self.lease_seconds
        self._pool, self._pool_all, self._pool_groups = {}, 0, {}
        for h in self.hosts.values():
            if h.alive(now, self.lease_seconds):
                self._count(h)

    def pool_owners(self, visibility: pol.Visibility) -> int:
        """How many volunteers could run a job of this visibility (for the distinct-volunteers rule)."""
        if visibility.scope == "public":
            return self._pool_all
        if visibility.scope == "group":
            return self._pool_groups.get(visibility.group, 0)
        return 1

    # -- jobs --------------------------------------------------------------------------------------

    def add_jobs(self, new: list[NewJob], now: float) -> tuple[list[int], Changes]:
        """New jobs; those that run after others (job graphs) are held until those are certified.
        The caller checked that every job named in ``after`` is active or certified."""
        ch = Changes()
        ids = []
        base = self.next_job_id
        held = []
        for nj in new:
            jid = self.next_job_id
            self.next_job_id += 1
            job = JobState(
                id=jid,
                owner_id=nj.owner_id,
                app_id=nj.app_id,
                policy=self._intern(nj.policy),
                visibility=self._intern(nj.visibility),
                memory=nj.memory,
                status=JobStatus.PENDING,
                disk=nj.disk,
                wanted=nj.policy.replication,
                priority=nj.priority,
                batch=nj.row.get("batch"),
            )
            self.jobs[jid] = job
            self.active_by_owner[nj.owner_id] = self.active_by_owner.get(nj.owner_id, 0) + 1
            row = {**nj.row, "id": jid, "status": JobStatus.PENDING.value, "submitted_at": now}
            if nj.after or nj.after_new:
                parents = sorted({*nj.after, *(base + i for i in nj.after_new)})
                row["after"] = parents
                row["inputs"] = [{k: v for k, v in {**x, "job": base + x["new"]}.items() if k != "new"}
                                 if "new" in x else x for x in row.get("inputs", ())]
                held.append((job, parents))
            else:
                self._enqueue(job)
            ch.jobs_new.append(row)
            ids.append(jid)
        for job, parents in held:
            # Those not active are certified (the caller checked), and an active job is never final:
            # graph.decide's answer, held for the active ones or ready, without building its dict.
            waiting = tuple(p for p in parents if p in self.jobs)
            self._hold(job, graph.Step(waiting=waiting) if waiting else _READY, now, ch)
        return ids, ch

    def cancel(self, job_ids: Iterable[int], now: float) -> tuple[list[int], Changes]:
        ch = Changes()
        done = []
        for jid in job_ids:
            job = self.jobs.get(jid)
            if job is None:
                continue
            for r in job.replicas:
                if r.status.active:
                    self._finish_replica(job, r, ReplicaStatus.ABORTED, now, ch, error="job cancelled")
            done.append(jid)
            self._end(job, JobStatus.CANCELLED, now, ch, error="cancelled by its owner")
        return done, ch

    # -- dispatch ----------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return any(self._ready.values())

    def assign(self, host_id: int, slots: int, now: float) -> tuple[list[ReplicaState], Changes]:
        host = self.hosts[host_id]
        ch = Changes()
        if host.revoked or host.owner_disabled:  # (a long poll it made before that)
            return [], ch
        out: list[ReplicaState] = []
        used = self._room(host)
        for _ in range(slots):
            job = self._next_job_for(host, used, now)
            if job is None:
                break
            need = self.need(job)
            used = (used[0] + need.cores, used[1] + need.memory, used[2] + need.disk)
            rid = self.next_replica_id
            self.next_replica_id += 1
            r = ReplicaState(
                id=rid,
                job_id=job.id,
                host_id=host.id,
                status=ReplicaStatus.ASSIGNED,
                lease_expires=now + self.lease_seconds,
                deadline=now + self.deadline_seconds(job),
                assigned_at=now,
            )
            if job.wanted <= len(job.extra_for):  # the replicas the quorum wants first, then extras
                r.covers = job.extra_for.pop(0)
            src = self._checkpoint_source(job, r.covers)
            if src is not None:
                r.resume, r.origin = src.checkpoint, src.origin or src.id
            if job.policy.adaptive and not job.replicas and self._trusted(host, job.id):
                job.solo = True
                job.wanted = 1
                ch.job(job.id, solo=True)
            job.add_replica(r)
            job.wanted -= 1
            self.replicas[rid] = r
            host.active.add(rid)
            self._use(job.owner_id, now)
            self._running[job.owner_id] = self._running.get(job.owner_id, 0) + 1
            ch.replicas_new.append(
                {
                    "id": rid,
                    "job_id": job.id,
                    "host_id": host.id,
                    "status": r.status.value,
                    "validation": r.validation.value,
                    "assigned_at": now,
                    "lease_expires": r.lease_expires,
                    "deadline": r.deadline,
                    "covers": r.covers,
                    "resume": r.resume,
                    "origin": r.origin,
                }
            )
            if job.status is JobStatus.PENDING:
                job.status = job_fsm.transition(job.status, JobStatus.RUNNING)
                ch.job(job.id, status=job.status.value, started_at=now)
                ch.moves.append((job.owner_id, job.batch, JobStatus.PENDING.value, JobStatus.RUNNING.value))
            out.append(r)
        return out, ch

    def _next_job_for(self, host: HostState, used: tuple[int, int, int] = (0, 0, 0),
                      now: float = 0.0) -> JobState | None:
        view = host.view()
        owners = [o for o, heap in self._ready.items() if heap]
        if len(owners) > 1:
            owners = shares_mod.order(owners, self._running, self._recent(owners, now), self.share)
        for owner in owners:
            heap = self._ready[owner]
            skipped: list[tuple[int, int]] = []
            found = None
            while heap and len(skipped) < SCAN_LIMIT:
                job = self.jobs.get(heap[0][1])
                if job is None or job.wanted <= 0:
                    heapq.heappop(heap)
                    if job is not None:
                        job.in_queue = False
                    continue
                # (The refusal covers what the host lacks even idle; here, only room beside what it runs.)
                if (self._refusal(view, job) is None
                        and capacity.has_room(view.offer, used[0], used[1], self.need(job), used[2])
                        and (job.wanted > len(job.extra_for)
                             or silence.may_take_extra(host.reputation, now - job.extra_since, self.lease_seconds))):
                    found = job
                    break
                skipped.append(heapq.heappop(heap))
            for entry in skipped:
                heapq.heappush(heap, entry)
            if not heap:
                del self._ready[owner]
                continue
            if found is not None:
                # It stays queued; once its wanted count reaches 0 the next scan drops it.
                return found
        return None

    def _checkpoint_source(self, job: JobState, covers: int | None) -> ReplicaState | None:
        """The replica whose latest checkpoint a new replica of the job resumes from: the silent
        one it covers, else the last one lost; None when they uploaded none."""
        if covers is not None:
            r = self.replicas.get(covers)
            return r if r is not None and r.checkpoint else None
        lost = [r for r in job.replicas if r.status is ReplicaStatus.LOST and r.checkpoint]
        return lost[-1] if lost else None

    def platform_class(self, job: JobState) -> str | None:
        """The platform a job's replicas are bound to: its first replica's host's, when its app asks
        for homogeneous redundancy (None: any platform)."""
        if not job.replicas or self._apps is None:
            return None
        app = self._apps(job.app_id)
        if not getattr(app, "homogeneous", False):
            return None
        host = self.hosts.get(job.replicas[0].host_id)
        return host.platform if host is not None else None

    def deadline_seconds(self, job: JobState) -> float:
        """How long a replica of this job may take: its app's deadline."""
        app = self._apps(job.app_id) if self._apps is not None else None
        return getattr(app, "deadline", None) or DEFAULT_DEADLINE

    # -- capacity ----------------------------------------------------------------------------------

    def need(self, job: JobState) -> capacity.Need:
        app = self._apps(job.app_id) if self._apps is not None else None
        key = (job.app_id, job.memory)
        hit = self._needs.get(key)
        if hit is None or hit[0] is not app:
            if app is None:
                n = capacity.Need(1, job.memory)
            else:
                n = capacity.Need(int(app.limits.get("cores", 1)), job.memory,
                                  tuple(capacity.Version(v.runs_on, v.image is not None) for v in app.versions),
                                  bool(getattr(app, "network", False)))
            self._needs[key] = hit = (app, n)
        n = hit[1]
        # Inputs differ from job to job: not cached (a new Need for each job with inputs, each time).
        return capacity.Need(n.cores, n.memory, n.versions, n.network, job.disk) if job.disk else n

    def offer(self, host_id: int, *, cpus: int | None = None, memory: int | None = None,
              platform: str | None = None, images: bool | None = None, network: bool | None = None,
              disk: int | None = None) -> None:
        """A worker's new offer (at its hello)."""
        h = self.hosts.get(host_id)
        if h is None:
            return
        h.disk = h.disk if disk is None else disk
        h.network = h.network if network is None else network
        h.cores = h.cores if cpus is None else cpus
        h.memory = h.memory if memory is None else memory
        h.platform = h.platform if platform is None else platform
        h.images = h.images if images is None else images

    def _room(self, host: HostState) -> tuple[int, int, int]:
        """The cores, memory and disk the replicas running on a host need, summed."""
        cores = memory = disk = 0
        for rid in host.active:
            r = self.replicas[rid]
            job = None if r.ran else self.jobs.get(r.job_id)
            if job is not None:
                n = self.need(job)
                cores += n.cores
                memory += n.memory
                disk += n.disk
        return cores, memory, disk

    def _refusal(self, view: pol.HostView, job: JobState) -> str | None:
        return self._refusals_until_one_may((view,), job)[0]

    def _refusals_until_one_may(self, views: Iterable[pol.HostView], job: JobState) -> list[str | None]:
        """The hosts' refusals, up to the first host that may run the job: a queued job among
        many hosts costs one check, not one per host (``views`` may be a generator)."""
        hosts_used, owners_used = job.hosts_used, self._owners_used(job)
        pool_owners = self.pool_owners(job.visibility)
        need = self.need(job)
        klass = self.platform_class(job)
        out: list[str | None] = []
        for v in views:
            out.append(pol.refusal(host=v, visibility=job.visibility, memory_needed=job.memory,
                                   hosts_used=hosts_used, owners_used=owners_used, pool_owners=pool_owners,
                                   need=need, platform_class=klass))
            if out[-1] is None:
                break
        return out

    def alive_hosts(self, now: float) -> list[HostState]:
        return [h for h in self.hosts.values() if h.alive(now, self.lease_seconds)]

    def progress(self, job_id: int) -> float | None:
        """The furthest progress a running replica of this job reported, or None."""
        job = self.jobs.get(job_id)
        done = [r.progress for r in job.replicas if r.status.active and r.progress is not None] if job else []
        return max(done) if done else None

    def why(self, job_id: int, now: float, alive: list[HostState] | None = None) -> why_mod.Why | None:
        """Why this active job is not progressing (None when it is not active here). ``alive``:
        the hosts alive now, when the caller asks about many jobs at once."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        if job.waiting:
            return why_mod.Why(False, graph.waiting_line(sorted(job.waiting)))
        if alive is None:
            alive = self.alive_hosts(now)
        active = sum(1 for r in job.replicas if r.status.active)
        ends_in = None
        if job.stuck_since is not None:
            ends_in = job.stuck_since + self.patience - now
        return why_mod.explain(
            status=job.status.value,
            active=active,
            wanted=job.wanted,
            quorum=(SOLO if job.solo else job.policy).quorum,
            digests=[r.digest for r in job.replicas if r.status is ReplicaStatus.DONE and r.digest
                     and r.verdict is not Verdict.REJECTED],
            refusals=self._refusals_until_one_may((h.view() for h in alive), job),
            hosts_known=len(self.hosts),
            memory_needed=job.memory,
            largest_memory=max((h.memory for h in alive), default=0),
            ends_in=ends_in,
            suspended=[h.suspended for h in alive if h.suspended],
            alive=len(alive),
            silent=[self._silent_for(r, now) for r in job.replicas if r.status.active and self._silent_for(r, now)],
            extras=sum(1 for r in job.replicas if r.covers is not None and r.status.active),
            extras_wanted=len(job.extra_for),
            agreeing=self._agreeing(job),
        )

    def _check_stuck(self, now: float, ch: Changes) -> None:
        """End the tried jobs that no host alive has been able to take for ``patience`` (policy)."""
        if not self._watch:
            return
        alive = None
        for jid in sorted(self._watch):
            job = self.jobs.get(jid)
            if job is None or job.wanted <= 0 or any(r.status.active for r in job.replicas):
                self._watch.discard(jid)
                if job is not None:
                    job.stuck_since = None
                continue
            if alive is None:
                alive = self.alive_hosts(now)
            if None in self._refusals_until_one_may((h.view() for h in alive), job):
                job.stuck_since = None  # a host may take it: it only waits for a free slot
                continue
            if job.stuck_since is None:
                job.stuck_since = now
                continue
            if now - job.stuck_since < self.patience:
                continue
            self._watch.discard(jid)
            done = [r for r in job.replicas if r.status is ReplicaStatus.DONE]
            digests = [r.digest for r in done if r.digest and r.verdict is not Verdict.REJECTED]
            for r in done:
                if r.validation is Validation.PENDING:
                    r.validation = replica_fsm.validate(r.validation, Validation.INVALID)
                    ch.replica(r.id, validation=r.validation.value)
            reason = pol.no_quorum_reason(
                quorum=job.policy.quorum, digests=digests,
                failed=sum(1 for r in job.replicas if r.status is ReplicaStatus.FAILED), hosts_alive=len(alive),
            )
            tail = f": {job.last_stderr}" if job.last_stderr and not digests else ""
            self._end(job, JobStatus.ERROR, now, ch, error=reason + tail)

    def _trusted(self, host: HostState, job_id: int) -> bool:
        """May this host's result certify this job alone? Trusted hosts only, minus spot checks.

        A newly trusted host is checked more: with probability ``trust_threshold / reputation``
        while that exceeds ``spot_check``. A liar that lies now and then reaches the threshold by
        luck; each of its lies is then caught with the probability of a check, and every lie not
        caught is a wrong result certified — so checks are densest where such luck ends."""
        if host.reputation < self.trust_threshold:
            return False
        check = max(self.spot_check, self.trust_threshold / max(host.reputation, 1))
        draw = hashlib.blake2b(job_id.to_bytes(8, "big"), key=self._salt, digest_size=4).digest()
        return int.from_bytes(draw, "big") / 2**32 >= check

    def _owners_used(self, job: JobState) -> set[int]:
        """The volunteers whose hosts hold a replica of this job or gave a result for it."""
        if not job.replicas:
            return _NONE
        owners = set()
        for r in job.replicas:
            if r.status in _NO_VOTE:
                continue
            host = self.hosts.get(r.host_id)
            if host is not None:
                owners.add(host.owner_id)
        return owners

    def _enqueue(self, job: JobState) -> None:
        if job.wanted > 0 and not job.in_queue:
            heapq.heappush(self._ready.setdefault(job.owner_id, []), (-job.priority, job.id))
            job.in_queue = True

    # -- fair share (shares.py) --------------------------------------------------------------------

    def _use(self, owner_id: int, now: float) -> None:
        """Bring the owner's recent usage up to ``now``, before its running count changes."""
        u = self._usage.get(owner_id)
        self._usage[owner_id] = shares_mod.decayed(u or shares_mod.Usage(0.0, now), self._running.get(owner_id, 0),
                                                   now, self.usage_half_life)

    def _recent(self, owners: Iterable[int], now: float) -> dict[int, float]:
        out = {}
        for o in owners:
            u = self._usage.get(o)
            if u is not None:
                out[o] = shares_mod.decayed(u, self._running.get(o, 0), now, self.usage_half_life).recent
        return out

    def usage(self, now: float) -> dict[int, tuple[int, float]]:
        """(replicas running, recent usage) of each owner the scheduler has seen run something."""
        return {o: (self._running.get(o, 0), r) for o, r in self._recent(list(self._usage), now).items()}

    # -- worker reports ----------------------------------------------------------------------------

    def ran(self, host_id: int, replica_ids: Iterable[int]) -> None:
        """The replicas a host ran to the end and still has to report (a slow uplink, or its
        coordinator away when they ended): their cores and memory are free for other work."""
        host = self.hosts.get(host_id)
        if host is None:
            return
        for rid in replica_ids:
            if rid in host.active:
                self.replicas[rid].ran = True

    def heartbeat(self, host_id: int, held: Iterable[int], now: float,
                  progress: dict[int, float] | None = None, suspended: str = "",
                  checkpoints: dict[int, str] | None = None) -> tuple[list[int], Changes]:
        """Extend the leases of what the host holds (and note the progress its jobs report, why
        they are suspended if they are, and their checkpoints uploaded); return what it holds
        that it should abort."""
        host = self.hosts[host_id]
        host.suspended = suspended
        self.touch(host_id, now)
        ch = Changes()
        ch.host(host_id, last_alive=now)
        abort = []
        lease = now + self.lease_seconds
        for rid in held:
            if rid not in host.active:
                abort.append(rid)
                continue
            r = self.replicas[rid]
            r.lease_expires = lease
            if progress and rid in progress:
                r.progress = progress[rid]
            if checkpoints and rid in checkpoints and checkpoints[rid] != r.checkpoint:
                r.checkpoint = checkpoints[rid]
                ch.replica(rid, checkpoint=r.checkpoint)
            if r.status is ReplicaStatus.ASSIGNED:
                r.status = replica_fsm.transition(r.status, ReplicaStatus.RUNNING)
                ch.replica(rid, status=r.status.value, started_at=now, lease_expires=lease)
            else:
                ch.replica(rid, lease_expires=lease)
        return abort, ch

    def report(self, host_id: int, reports: list[Report], now: float) -> tuple[dict[int, str], Changes]:
        """Record finished replicas. Returns, per replica id, 'accepted' or why it was ignored."""
        self.touch(host_id, now)
        ch = Changes()
        ch.host(host_id, last_alive=now)
        outcome: dict[int, str] = {}
        touched: dict[int, JobState] = {}
        for rep in reports:
            r = self.replicas.get(rep.replica_id)
            if r is None or r.host_id != host_id:
                outcome[rep.replica_id] = "unknown"
                continue
            if not r.status.active:
                outcome[rep.replica_id] = r.status.value.lower()
                continue
            job = self.jobs[r.job_id]
            fields = {"exit_code": rep.exit_code, "stderr_tail": rep.stderr_tail, "error": rep.error}
            if rep.ok:
                r.digest, r.size, r.verdict = rep.digest, rep.size, rep.verdict
                if rep.equivalent:
                    r.equivalent = rep.equivalent
                    fields["equivalent"] = sorted(rep.equivalent)
                fields.update(
                    result_sha256=rep.digest,
                    result_size=rep.size,
                    verdict=rep.verdict.value if rep.verdict else None,
                )
                self._finish_replica(job, r, ReplicaStatus.DONE, now, ch, **fields)
            else:
                # What the worker saw (a limit reached...), then what the job said.
                job.last_stderr = "\n".join(x for x in (rep.error, rep.stderr_tail) if x)
                self._finish_replica(job, r, ReplicaStatus.FAILED, now, ch, **fields)
            outcome[rep.replica_id] = "accepted"
            touched[job.id] = job
        for job in touched.values():
            self._settle(job, now, ch)
        return outcome, ch

    def lose(self, host_id: int, replica_ids: Iterable[int] | None, now: float, why: str) -> Changes:
        """The host gave back (or forgot) these replicas — all of its replicas when None."""
        host = self.hosts[host_id]
        ch = Changes()
        ids = list(host.active) if replica_ids is None else [i for i in replica_ids if i in host.active]
        touched = {}
        for rid in ids:
            r = self.replicas[rid]
            job = self.jobs[r.job_id]
            self._finish_replica(job, r, ReplicaStatus.LOST, now, ch, error=why)
            touched[job.id] = job
        for job in touched.values():
            self._settle(job, now, ch)
        return ch

    def revoke(self, host_id: int, now: float) -> Changes:
        """The host's token was revoked: its replicas are lost now (their jobs get new ones on
        other hosts), and it never counts as alive again."""
        ch = self.lose(host_id, None, now, "host revoked")
        self.hosts[host_id].revoked = True
        self.refresh_pool(now)
        return ch

    def set_owner_disabled(self, owner_id: int, disabled: bool, now: float) -> Changes:
        """A volunteer's account disabled (or enabled again): its hosts are gone at once, as
        revoked ones are — their replicas lost now, their jobs given new ones on other hosts — until
        it is enabled again."""
        parts = []
        for host in [h for h in self.hosts.values() if h.owner_id == owner_id]:
            host.owner_disabled = disabled
            if disabled:
                parts.append(self.lose(host.id, None, now, "volunteer disabled"))
        self.refresh_pool(now)
        return Changes.merge(parts)

    def reap(self, now: float) -> Changes:
        """Replicas past their deadline, or whose host is alive without them, are lost; their jobs
        get new ones. Jobs waiting on silent hosts may get extra replicas (silence.py)."""
        ch = Changes()
        touched = {}
        silent: dict[int, JobState] = {}
        for host in self.hosts.values():
            if not host.active:
                continue
            alive = host.alive(now, self.lease_seconds)
            for rid in list(host.active):
                r = self.replicas[rid]
                job = self.jobs[r.job_id]
                why = silence.fate(now=now, lease_expires=r.lease_expires, deadline=r.deadline, host_alive=alive)
                if why is not None:
                    self._finish_replica(job, r, ReplicaStatus.LOST, now, ch, error=why)
                    touched[job.id] = job
                elif not alive:
                    silent[job.id] = job
        for job in touched.values():
            self._settle(job, now, ch)
        for job in silent.values():
            if job.id in self.jobs:
                self._plan_extras(job, now)
        self.refresh_pool(now)
        self._check_stuck(now, ch)
        return ch

    def _silent_for(self, r: ReplicaState, now: float) -> float:
        host = self.hosts.get(r.host_id)
        if host is None or host.alive(now, self.lease_seconds):
            return 0.0
        return now - host.last_alive

    def _plan_extras(self, job: JobState, now: float) -> None:
        """Want an extra replica for each silent replica the job's quorum waits on (silence.py)."""
        held = [silence.Held(r.id, self._silent_for(r, now)) for r in job.replicas if r.status.active]
        covered = {r.covers for r in job.replicas
                   if r.covers is not None and (r.status.active or r.status is ReplicaStatus.DONE)}
        more = silence.extras(held, covered | set(job.extra_for), agreeing=self._agreeing(job),
                              quorum=(SOLO if job.solo else job.policy).quorum, lease=self.lease_seconds,
                              silent_leases=self.silent_leases)
        if not more:
            return
        if not job.extra_for:
            job.extra_for, job.extra_since = [], now
        job.extra_for.extend(more)
        job.wanted += len(more)
        self._enqueue(job)

    @staticmethod
    def _agreeing(job: JobState) -> int:
        if job.tally is None:
            job.tally = Tally()
        return agreement([ReplicaView(r.id, r.status, r.digest, r.verdict, r.origin, r.equivalent) for r in job.replicas
                          if r.status is ReplicaStatus.DONE and r.digest and r.verdict is not Verdict.REJECTED],
                         job.tally)

    # -- internals ---------------------------------------------------------------------------------

    def _finish_replica(
        self, job: JobState, r: ReplicaState, status: ReplicaStatus, now: float, ch: Changes, **fields
    ) -> None:
        was_active = r.status.active
        r.status = replica_fsm.transition(r.status, status)
        r.finished_at = now
        ch.replica(r.id, status=status.value, finished_at=now, **fields)
        if was_active:
            host = self.hosts.get(r.host_id)
            if host is not None:
                host.active.discard(r.id)
            self._use(job.owner_id, now)
            self._running[job.owner_id] -= 1
            if not self._running[job.owner_id]:
                del self._running[job.owner_id]

    def _settle(self, job: JobState, now: float, ch: Changes) -> Decision:
        if job.waiting:  # held by the jobs it runs after: nothing to decide yet
            return Decision()
        views = [ReplicaView(r.id, r.status, r.digest, r.verdict, r.origin, r.equivalent) for r in job.replicas]
        if job.solo and not (views[0].status.active or (views[0].status is ReplicaStatus.DONE
                                                      and views[0].verdict is not Verdict.REJECTED)):
            job.solo = False  # the trusted host did not deliver: back to the quorum
            ch.job(job.id, solo=False)
        if job.tally is None:
            job.tally = Tally()
        d = decide(SOLO if job.solo else job.policy, views, job.tally)
        by_id = {r.id: r for r in job.replicas}
        for rid in d.abort:
            self._finish_replica(job, by_id[rid], ReplicaStatus.ABORTED, now, ch, error="no longer needed")
        for rid, verdict in [(i, Validation.VALID) for i in d.valid] + [(i, Validation.INVALID) for i in d.invalid]:
            r = by_id[rid]
            r.validation = replica_fsm.validate(r.validation, verdict)
            ch.replica(rid, validation=verdict.value)
            host = self.hosts.get(r.host_id)
            # A result nobody checked earns no trust; a job that ended without a certified result
            # proved nobody wrong. A result outvoted by a quorum is a lie (or a fault): the host's
            # run of valid results restarts, from a debt of trust_threshold more for each lie.
            if host is not None and not job.solo and d.certified is not None:
                if verdict is Validation.VALID:
                    host.reputation += 1
                else:
                    host.reputation = min(host.reputation, 0) - self.trust_threshold
                ch.host(host.id, reputation=host.reputation)
        if d.certified is not None:
            self._credit(by_id, d.valid, now, ch)
            winner = next(r for r in job.replicas if r.id in d.valid and r.digest == d.certified)
            self._end(job, JobStatus.COMPLETED, now, ch, result_sha256=d.certified, result_size=winner.size)
        elif d.error is not None:
            tail = f": {job.last_stderr}" if job.last_stderr else ""
            self._end(job, JobStatus.ERROR, now, ch, error=d.error + tail)
        else:
            if job.extra_for:  # an extra is wanted only while its silent replica is still awaited
                job.extra_for = [i for i in job.extra_for if by_id[i].status.active]
            job.wanted = d.spawn + len(job.extra_for)
            self._enqueue(job)
            if job.wanted > 0 and job.replicas and not any(r.status.active for r in job.replicas):
                self._watch.add(job.id)
        return d

    def _credit(self, by_id: dict[int, ReplicaState], valid: Iterable[int], now: float, ch: Changes) -> None:
        """Grant the replicas that certified a job their credit, and add it to their hosts'."""
        claims = {rid: credit_mod.claim(by_id[rid].assigned_at, by_id[rid].finished_at or now) for rid in valid}
        for rid, earned in credit_mod.grant(claims, valid).items():
            ch.replica(rid, credit=earned)
            host = self.hosts.get(by_id[rid].host_id)
            if host is not None:
                host.credit = round(host.credit + earned, credit_mod.PRECISION)
                ch.host(host.id, credit=host.credit)

    def _end(self, job: JobState, status: JobStatus, now: float, ch: Changes, **fields) -> None:
        self._close(job, status, now, ch, **fields)
        if self._children:
            self._release(job.id, status, now, ch)

    def _close(self, job: JobState, status: JobStatus, now: float, ch: Changes, **fields) -> None:
        before = job.status
        job.status = job_fsm.transition(job.status, status)
        ch.job(job.id, status=status.value, finished_at=now, **fields)
        ch.moves.append((job.owner_id, job.batch, before.value, status.value))
        ch.finished.append(job.id)
        u = self._usage.get(job.owner_id)
        if u is not None:  # stored with the job's end (in its transaction): a restart goes on from it
            ch.usage[job.owner_id] = {"recent": u.recent, "at": u.at}
        del self.jobs[job.id]
        left = self.active_by_owner[job.owner_id] - 1
        if left:
            self.active_by_owner[job.owner_id] = left
        else:
            del self.active_by_owner[job.owner_id]
        for r in job.replicas:
            self.replicas.pop(r.id, None)

    def _release(self, job_id: int, status: JobStatus, now: float, ch: Changes) -> None:
        """A job ended: the jobs held until it was certified start, or end with it (graph.py) —
        and theirs in turn, by a work list (a long chain does not recurse)."""
        todo = [(job_id, status)]
        while todo:
            parent, st = todo.pop()
            for cid in self._children.pop(parent, ()):
                child = self.jobs.get(cid)
                if child is None or parent not in child.waiting:
                    continue
                if st is JobStatus.COMPLETED:  # (decide's answer, without the dict)
                    child.waiting.discard(parent)
                    if child.waiting:
                        continue
                    step = _READY
                else:
                    step = graph.decide({**{p: JobStatus.PENDING for p in child.waiting}, parent: st})
                if step.end is not None:
                    child.waiting = ()
                    self._close(child, JobStatus.CANCELLED, now, ch, error=f"cancelled: {step.end}")
                    todo.append((cid, JobStatus.CANCELLED))
                elif step.ready:
                    child.waiting = ()
                    child.wanted = child.policy.replication
                    self._enqueue(child)
                else:
                    child.waiting.discard(parent)
