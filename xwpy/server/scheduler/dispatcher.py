"""The dispatcher: the scheduler engine, made durable and reachable.

Every engine step runs on the reactor thread (so steps never interleave), and its changes are
committed to the catalog before the step's caller is answered. Workers waiting for work are parked
(long poll) and woken when work appears. A lease reaper runs on the injected clock.

If a commit fails (disk full, database gone), the engine may hold state the catalog does not: the
dispatcher then freezes — every scheduling request gets a clear "try again" error — waits until the
catalog takes writes again, rebuilds the engine from the catalog, and resumes.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

from twisted.application import service
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from xwpy import archive
from xwpy.backoff import Backoff
from xwpy.lifecycle import JobStatus, ReplicaStatus
from xwpy.protocol import ResultReport
from xwpy.server import metrics
from xwpy.server.blobstore import BlobStore
from xwpy.server.catalog import blobs as blobs_catalog
from xwpy.server.catalog import health as catalog_health
from xwpy.server.catalog import jobs as jobs_catalog
from xwpy.server.catalog.connector import Catalog, CatalogFenced, CatalogUnavailable
from xwpy.server.catalog.rows import App
from xwpy.server.catalog.changes import Changes
from xwpy.server.scheduler.engine import Engine, HostState, JobState, NewJob, ReplicaState, Report
from xwpy.server.scheduler.shares import Usage
from xwpy.singleflight import SingleFlight
from xwpy import compare as compare_mod
from xwpy.compare import load_comparator
from xwpy.verify import Verdict, load_verifier

log = Logger()


class Frozen(CatalogUnavailable):
    """The dispatcher is rebuilding its state after a failed write."""


@dataclass
class Dispatched:
    replica: ReplicaState
    app: App
    args: list
    inputs: list


@dataclass
class _Write:
    """One engine step for the catalog writer: its changes, the job specs to read back, and the
    inline result blobs to store before the catalog refers to them."""

    changes: Changes
    fetch: list[int] | None = None
    blobs: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(eq=False)
class _Waiter:
    host_id: int
    slots: int
    d: Deferred
    timer: Any = None


@dataclass
class Stats:
    dispatched: int = 0
    reported: int = 0
    certified: int = 0
    failed_jobs: int = 0
    lost: int = 0
    expired: int = 0  # lost by the reaper: their lease (or deadline) ran out
    rebuilds: int = 0


class Dispatcher(service.Service):
    name = "dispatcher"

    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        reactor,
        *,
        apps: Callable[[int], App | None],
        lease_seconds: float,
        heartbeat_seconds: float,
        reap_seconds: float,
        max_wait_seconds: float,
        trust_threshold: int = 10,
        spot_check: float = 0.1,
        no_quorum_seconds: float | None = None,
        silent_leases: float = 3.0,
        share: Callable[[int], float] | None = None,
        usage_half_life: float = 86400.0,
    ):
        self.catalog = catalog
        self.blobs = blobs
        catalog.register_batch("scheduler", self._write_batch)
        self.reactor = reactor
        self._apps = apps
        self.heartbeat_seconds = heartbeat_seconds
        self.max_wait = max_wait_seconds
        self.engine = Engine(lease_seconds=lease_seconds, trust_threshold=trust_threshold, spot_check=spot_check,
                             patience=no_quorum_seconds, apps=apps, silent_leases=silent_leases, share=share,
                             usage_half_life=usage_half_life)
        self._reap_seconds = reap_seconds
        self._reaper: task.LoopingCall | None = None
        self._waiters: deque[_Waiter] = deque()
        self._frozen: str | None = "starting"
        self._final_listeners: list[Callable[[list[int]], None]] = []
        self._commit_listeners: list[Callable[[Changes], None]] = []
        self._job_waiters: dict[int, list[Deferred]] = {}
        self._requests = SingleFlight()  # submissions in flight, by (owner, request key)
        self._finishing: set[int] = set()  # final in memory, not yet committed
        self.stats = Stats()
        self.certification_latency = metrics.latency_histogram()
        self._submitted = metrics.SubmitTimes()
        self._prune_at = 256
        self._prepared = compare_mod.Prepared()  # results as their comparators parsed them (_compare)

    @property
    def waiting_workers(self) -> int:
        """Work requests parked in the long poll now."""
        return len(self._waiters)

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._rebuild()
        self._reaper = task.LoopingCall(self._reap)
        self._reaper.clock = self.reactor
        self._reaper.start(self._reap_seconds, now=False).addErrback(
            lambda f: log.failure("lease reaper stopped", f)
        )

    def stopService(self):
        super().stopService()
        if self._reaper is not None and self._reaper.running:
            self._reaper.stop()
        for w in list(self._waiters):
            self._settle_waiter(w, [])

    async def _rebuild(self) -> None:
        hosts = await self.catalog.hosts.all()
        disabled = {u.id for u in await self.catalog.users.all() if u.disabled}  # their hosts are gone
        job_rows, rep_rows, next_job, next_rep = await self.catalog.jobs.load_active()
        usage = await self.catalog.jobs.load_usage()
        now = self.reactor.seconds()
        ch = self.engine.load(
            hosts=[
                HostState(h.id, h.owner_id, h.group, h.memory, h.reputation, h.last_alive, cores=h.cpus,
                          platform=h.platform, images=h.images, network=h.network, disk=h.disk,
                          revoked=h.revoked_at is not None, owner_disabled=h.owner_id in disabled,
                          credit=h.credit) for h in hosts
            ],
            jobs=[JobState.of(r) for r in job_rows],
            replicas=[ReplicaState.of(r) for r in rep_rows],
            next_job_id=max(next_job, self.engine.next_job_id),
            next_replica_id=max(next_rep, self.engine.next_replica_id),
            now=now,
            usage={o: Usage(recent, at) for o, (recent, at) in usage.items()},
        )
        self._frozen = None
        if ch:
            await self._commit(ch, now)
        log.info(
            "scheduler state loaded: {jobs} active jobs, {replicas} replicas, {hosts} hosts",
            jobs=len(self.engine.jobs), replicas=len(self.engine.replicas), hosts=len(self.engine.hosts),
        )
        self._wake()

    def on_commit(self, listener: Callable[[Changes], None]) -> None:
        """Call ``listener(changes)`` as each change of the jobs, replicas and hosts tables is
        committed, before its writer or anyone waiting on it hears of it (caches of those tables
        drop what it changed: :mod:`xwpy.server.reads`)."""
        self._commit_listeners.append(listener)

    def on_final(self, listener: Callable[[list[int]], None]) -> None:
        """Call ``listener(job_ids)`` after jobs reach a final state (committed)."""
        self._final_listeners.append(listener)

    # -- committing ------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._frozen is not None:
            raise Frozen(f"scheduler unavailable ({self._frozen}); retry shortly")

    def _write_batch(self, conn, writes: list[_Write]) -> list:
        """Writer thread: consecutive engine steps, merged into a few multi-row statements."""
        blobs_catalog.store(conn, [b for w in writes for b in w.blobs])
        jobs_catalog.apply(conn, Changes.merge([w.changes for w in writes]))
        wanted = {jid for w in writes if w.fetch for jid in w.fetch}
        specs = jobs_catalog.specs(conn, wanted) if wanted else {}
        return [{jid: specs[jid] for jid in w.fetch} if w.fetch else None for w in writes]

    async def _commit(self, ch: Changes, now: float, fetch: list[int] | None = None,
                      blobs: list[tuple[str, bytes]] | None = None):
        self._finishing.update(ch.finished)
        try:
            result = await self.catalog.write_batched("scheduler", _Write(ch, fetch, blobs or []), engine=True)
        except CatalogUnavailable as e:
            self._freeze(str(e))
            raise
        finally:
            self._finishing.difference_update(ch.finished)
        for listener in self._commit_listeners:
            listener(ch)
        if ch.finished:
            self._announce(ch)
        return result

    def active(self, job_id: int) -> bool:
        """Whether the job is not final yet, or its final state not yet committed."""
        return job_id in self.engine.jobs or job_id in self._finishing

    def wait_final(self, job_id: int, timeout: float) -> Deferred:
        """Fires once the job's final state is committed (at once if it is not active), or after
        ``timeout``."""
        if not self.active(job_id):
            return succeed(None)
        d: Deferred = Deferred()
        waiters = self._job_waiters.setdefault(job_id, [])
        waiters.append(d)

        def expire():
            if not d.called:
                waiters.remove(d)
                if not waiters:
                    self._job_waiters.pop(job_id, None)
                d.callback(None)

        timer = self.reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (timer.cancel() if timer.active() else None, r)[1])
        return d

    def _announce(self, ch: Changes) -> None:
        for jid in ch.finished:
            for d in self._job_waiters.pop(jid, ()):
                d.callback(None)
        now = self.reactor.seconds()
        for jid in ch.finished:
            status = ch.jobs[jid]["status"]
            if status == JobStatus.COMPLETED:
                self.stats.certified += 1
                submitted = self._submitted.at(jid)
                if submitted is not None:
                    self.certification_latency.observe(max(0.0, now - submitted))
            elif status == JobStatus.ERROR:
                self.stats.failed_jobs += 1
        if len(self._submitted) > self._prune_at:  # now and then (a scan of the active jobs)
            self._submitted.forget_before(min(self.engine.jobs, default=self.engine.next_job_id))
            self._prune_at = max(256, 2 * len(self._submitted))
        for listener in self._final_listeners:
            try:
                listener(list(ch.finished))
            except Exception:
                log.failure("final-state listener failed")

    def _freeze(self, why: str) -> None:
        if self._frozen is not None:
            return
        if self.catalog.failure is not None and isinstance(self.catalog.failure, CatalogFenced):
            self._frozen = why  # another coordinator leads: nothing to recover (the process stops)
            return
        self._frozen = why
        self.stats.rebuilds += 1
        log.error("catalog write failed, scheduler frozen until the catalog recovers: {why}", why=why)
        Deferred.fromCoroutine(self._recover())

    async def _recover(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                # FIFO: once this write commits, every write queued before it has been decided.
                await self.catalog.write(lambda conn: conn.exec_driver_sql("SELECT 1"))
                await self.catalog.write(catalog_health.probe)
                self.catalog.reset_failure()
                await self._rebuild()
                log.info("catalog writable again, scheduler resumed")
                return
            except Exception as e:  # noqa: BLE001 - keep trying until the catalog is back
                log.warn("catalog still unavailable: {e}", e=str(e)[:200])
                await task.deferLater(self.reactor, backoff.next(), lambda: None)

    # -- hosts -----------------------------------------------------------------------------------

    def add_host(self, host: HostState) -> None:
        self.engine.add_host(host)

    async def revoke(self, host_id: int) -> None:
        """A revoked host: its replicas go to other hosts now, and a long poll it still has open
        is answered with nothing."""
        self._check()
        now = self.reactor.seconds()
        ch = self.engine.revoke(host_id, now)
        self.stats.lost += _lost(ch)
        for w in [w for w in self._waiters if w.host_id == host_id]:
            self._settle_waiter(w, [])
        await self._commit(ch, now)
        self._wake()

    async def set_owner_disabled(self, owner_id: int, disabled: bool) -> None:
        """A volunteer's account disabled (or enabled): while disabled, its hosts' replicas go to
        other hosts now and their open long polls are answered with nothing."""
        self._check()
        now = self.reactor.seconds()
        ch = self.engine.set_owner_disabled(owner_id, disabled, now)
        self.stats.lost += _lost(ch)
        if disabled:
            hosts = {h.id for h in self.engine.hosts.values() if h.owner_id == owner_id}
            for w in [w for w in self._waiters if w.host_id in hosts]:
                self._settle_waiter(w, [])
        await self._commit(ch, now)
        self._wake()

    # -- jobs ------------------------------------------------------------------------------------

    async def submit(self, new: list[NewJob]) -> list[int]:
        self._check()
        now = self.reactor.seconds()
        ids, ch = self.engine.add_jobs(new, now)
        await self._commit(ch, now)
        if ids:
            self._submitted.add(ids[0], now)
        self._wake()
        return ids

    async def once(self, key: tuple[int, str], submit: Callable[[], Awaitable[list[int]]]) -> list[int]:
        """The job ids ``submit()`` makes, made at most once per key (owner, client's request key):
        a repeated request gets the first one's ids, from the catalog or when it is committed."""

        async def lookup_or_submit() -> list[int]:
            return await self.catalog.jobs.ids_of_request(*key) or await submit()

        return await self._requests.run(key, lookup_or_submit)

    async def cancel(self, job_ids: Iterable[int]) -> list[int]:
        self._check()
        now = self.reactor.seconds()
        done, ch = self.engine.cancel(job_ids, now)
        if ch:
            await self._commit(ch, now)
        return done

    def jobs_held(self, host_id: int) -> list[int]:
        """The jobs of the replicas a host holds now (none for a host unknown)."""
        eng = self.engine
        state = eng.hosts.get(host_id)
        return sorted({eng.replicas[r].job_id for r in state.active}) if state is not None else []

    def checkpoints_held(self, host_id: int) -> set[str]:
        """The checkpoints the replicas a host holds were started from (it may download them)."""
        eng = self.engine
        state = eng.hosts.get(host_id)
        return {eng.replicas[r].resume for r in state.active if eng.replicas[r].resume} if state is not None else set()

    def apps_held(self, host_id: int) -> set[int]:
        """The apps of the replicas a host holds now."""
        eng = self.engine
        state = eng.hosts.get(host_id)
        if state is None:
            return set()
        jobs = (eng.jobs.get(eng.replicas[r].job_id) for r in state.active)
        return {j.app_id for j in jobs if j is not None}

    def active_owner(self, job_id: int) -> int | None:
        job = self.engine.jobs.get(job_id)
        return None if job is None else job.owner_id

    # -- workers ---------------------------------------------------------------------------------

    async def request_work(self, host_id: int, slots: int, wait: float) -> list[Dispatched]:
        self._check()
        got = await self._assign(host_id, slots)
        if got or wait <= 0:
            return got
        w = _Waiter(host_id, slots, Deferred(canceller=lambda d: self._drop_waiter(w)))
        w.timer = self.reactor.callLater(min(wait, self.max_wait), self._settle_waiter, w, [])
        self._waiters.append(w)
        return await w.d

    async def _assign(self, host_id: int, slots: int) -> list[Dispatched]:
        now = self.reactor.seconds()
        reps, ch = self.engine.assign(host_id, slots, now)
        if not reps:
            return []
        specs = await self._commit(ch, now, fetch=[r.job_id for r in reps])
        self.stats.dispatched += len(reps)
        out = []
        for r in reps:
            app_id, args, inputs = specs[r.job_id]
            out.append(Dispatched(r, self._apps(app_id), args, inputs))
        return out

    def _drop_waiter(self, w: _Waiter) -> None:
        try:
            self._waiters.remove(w)
        except ValueError:
            pass
        if w.timer is not None and w.timer.active():
            w.timer.cancel()

    def _settle_waiter(self, w: _Waiter, value) -> None:
        self._drop_waiter(w)
        if not w.d.called:
            w.d.callback(value)

    def _wake(self) -> None:
        """Hand newly ready work to parked workers, oldest waiter first."""
        if self._frozen is not None:
            return
        keep = []
        while self._waiters and self.engine.has_ready():
            w = self._waiters.popleft()
            if w.d.called:
                continue
            now = self.reactor.seconds()
            if w.host_id not in self.engine.hosts:
                self._settle_waiter(w, [])
                continue
            reps, ch = self.engine.assign(w.host_id, w.slots, now)
            if not reps:
                keep.append(w)  # nothing this host may take; others may still
                continue
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
            d = Deferred.fromCoroutine(self._deliver(ch, reps, now))
            d.addCallbacks(w.d.callback, w.d.errback)
        self._waiters.extendleft(reversed(keep))

    async def _deliver(self, ch: Changes, reps: list[ReplicaState], now: float) -> list[Dispatched]:
        specs = await self._commit(ch, now, fetch=[r.job_id for r in reps])
        self.stats.dispatched += len(reps)
        return [Dispatched(r, self._apps(specs[r.job_id][0]), specs[r.job_id][1], specs[r.job_id][2]) for r in reps]

    def ran(self, host_id: int, replica_ids: Iterable[int]) -> None:
        """The replicas the host ran to the end and has yet to report (Engine.ran; nothing stored)."""
        if replica_ids:
            self.engine.ran(host_id, replica_ids)

    async def alive(self, host_id: int, held: Iterable[int], progress: dict[int, float] | None = None,
                    suspended: str = "", checkpoints: dict[int, str] | None = None) -> list[int]:
        self._check()
        now = self.reactor.seconds()
        abort, ch = self.engine.heartbeat(host_id, held, now, progress, suspended, checkpoints)
        await self._commit(ch, now)
        return abort

    async def hello(self, host_id: int, offer: dict | None = None, held: Iterable[int] | None = None) -> None:
        """A worker (re)started: whatever its host held is lost, and gets rescheduled now, but for
        the replicas it kept (``held``: their job directories, to resume); what it offers (cpus,
        memory, platform, images) replaces what it offered before."""
        lost = None
        state = self.engine.hosts.get(host_id)
        if held is not None and state is not None:
            keep = set(held)
            lost = [rid for rid in state.active if rid not in keep]
        await self.release(host_id, lost, "worker restarted", offer)

    async def release(self, host_id: int, replica_ids: Iterable[int] | None, why: str = "released by worker",
                      offer: dict | None = None) -> None:
        self._check()
        now = self.reactor.seconds()
        ch = self.engine.lose(host_id, replica_ids, now, why)
        if offer:
            self.engine.offer(host_id, **offer)
            ch.host(host_id, **offer)
        self.engine.touch(host_id, now)
        ch.host(host_id, last_alive=now)
        self.stats.lost += _lost(ch)
        await self._commit(ch, now)
        self._wake()

    async def report(self, host_id: int, results: list[ResultReport]) -> dict[int, str]:
        """Record results. Each needs its archive stored first (uploaded, or inline here)."""
        outcome, _ = await self.report_and_assign(host_id, results, 0)
        return outcome

    async def report_and_assign(self, host_id: int, results: list[ResultReport],
                                slots: int) -> tuple[dict[int, str], list[Dispatched]]:
        """Record results (as :meth:`report`) and lease the host up to ``slots`` replicas in the
        same engine step: one commit for both, after which both are answered (a worker's report
        asks for its next work in the same round trip; two commits in a row were a tenth of a
        replica's cost). Nothing ready for it: no replicas, and the caller may wait for some."""
        self._check()
        outcome: dict[int, str] = {}
        reports: list[Report] = []
        inline: dict[int, tuple[str, bytes]] = {}
        reported: dict[int, dict[str, bytes | None]] = {}  # per job, results of this batch (comparators)
        for res in results:
            r = self.engine.replicas.get(res.replica_id)
            if r is None or r.host_id != host_id:
                outcome[res.replica_id] = "unknown"
                continue
            if not res.ok:
                reports.append(
                    Report(res.replica_id, False, exit_code=res.exit_code, stderr_tail=res.stderr_tail, error=res.error)
                )
                continue
            if res.inline is not None:
                if hashlib.sha256(res.inline).hexdigest() != res.result_sha256:
                    outcome[res.replica_id] = "digest-mismatch"
                    continue
                inline[res.replica_id] = (res.result_sha256, res.inline)
                size = len(res.inline)
            elif self.blobs.remote:
                # In an object store, uploaded around the coordinator: counted only if the store's
                # own SHA-256 of what it received is the digest reported (blobstore_s3.py).
                size, why = await deferToThread(self.blobs.verify, res.result_sha256)
                if size is None:
                    if why != "missing":
                        log.warn("result of replica {rid} refused: {why}; set aside", rid=res.replica_id, why=why)
                    outcome[res.replica_id] = "missing-result"  # upload it (again), then report again
                    continue
            else:
                size = self.blobs.size(res.result_sha256)
                if size is None:
                    outcome[res.replica_id] = "missing-result"  # upload it, then report again
                    continue
            job = self.engine.jobs[r.job_id]
            verdict = await self._verify(job.app_id, job.id, res.result_sha256, res.inline)
            equivalent = frozenset()
            app = self._apps(job.app_id)
            if app is not None and app.comparator is not None and verdict is not Verdict.REJECTED:
                others = {x.digest: None for x in job.replicas
                          if x.status is ReplicaStatus.DONE and x.digest and x.verdict is not Verdict.REJECTED}
                others.update(reported.get(job.id, {}))
                equivalent = await self._compare(app, res.result_sha256, res.inline, others)
                reported.setdefault(job.id, {})[res.result_sha256] = res.inline
            reports.append(
                Report(
                    res.replica_id, True, digest=res.result_sha256, size=size, verdict=verdict,
                    exit_code=res.exit_code, stderr_tail=res.stderr_tail, equivalent=equivalent,
                )
            )
        self._check()  # verification yielded: the state may have been frozen meanwhile
        now = self.reactor.seconds()
        blobs: list[tuple[str, bytes]] = []
        ch = Changes()
        if reports:
            accepted, ch = self.engine.report(host_id, reports, now)
            # Only the results the engine took become data: one for a replica lost meanwhile is
            # refused, and so is its archive.
            blobs = [inline[rid] for rid, verdict in accepted.items() if verdict == "accepted" and rid in inline]
            outcome.update(accepted)
        reps: list[ReplicaState] = []
        if slots > 0:
            reps, more = self.engine.assign(host_id, slots, now)
            if reps:
                ch = Changes.merge([ch, more])
        got: list[Dispatched] = []
        if ch or blobs:
            specs = await self._commit(ch, now, fetch=[r.job_id for r in reps] or None, blobs=blobs)
            self.stats.reported += sum(1 for v in outcome.values() if v == "accepted")
            self.stats.dispatched += len(reps)
            got = [Dispatched(r, self._apps(specs[r.job_id][0]), specs[r.job_id][1], specs[r.job_id][2]) for r in reps]
        if reports:
            self._wake()
        forgotten = sorted(rid for rid, verdict in outcome.items() if verdict == "unknown")
        if forgotten:
            # Replicas of jobs that ended (the scheduler drops them): say what became of each, as
            # the catalog has it ("aborted": the job no longer needed it), not "unknown".
            stored = await self.catalog.read(jobs_catalog.replica_statuses, host_id, forgotten)
            outcome.update({rid: status.lower() for rid, status in stored.items()})
        return outcome, got

    async def _verify(self, app_id: int, job_id: int, digest: str, data: bytes | None) -> Verdict | None:
        app = self._apps(app_id)
        if app is None or app.verifier is None:
            return None

        def check(conn) -> Verdict:
            nonlocal data
            args = jobs_catalog.specs(conn, [job_id])[job_id][1]
            try:
                if data is None:
                    data = blobs_catalog.get(conn, digest) or self.blobs.read(digest)
                files = archive.read_files(data, max_total=64 << 20)
                return load_verifier(app.verifier)(args, files)
            except Exception:  # a hostile archive must not break the coordinator
                return Verdict.REJECTED

        return await self.catalog.read(check)

    async def _compare(self, app: App, digest: str, data: bytes | None,
                       others: dict[str, bytes | None]) -> frozenset[str]:
        """The digests among ``others`` (earlier results of the job; their bytes when not stored
        yet) whose results the app's comparator finds equivalent to this one, both ways round.
        Each result is read and parsed once while the coordinator keeps it (compare.Prepared):
        not again for each later result of its job."""
        others = {d: b for d, b in others.items() if d != digest}
        if not others:
            return frozenset()
        params = app.compare or {}
        key = (app.comparator, tuple(sorted(params.items())))

        def check(conn) -> frozenset[str]:
            def prepared(d: str, raw: bytes | None):
                def make():
                    nonlocal raw
                    raw = raw if raw is not None else (blobs_catalog.get(conn, d) or self.blobs.read(d))
                    return compare_mod.prepare(compare, archive.read_files(raw, max_total=64 << 20), params), len(raw)
                return self._prepared.get((*key, d), make)

            try:  # a hostile archive, or a comparator that fails, makes no result equivalent
                compare = load_comparator(app.comparator)
                mine = prepared(digest, data)
            except Exception:
                return frozenset()
            out = set()
            for d, raw in others.items():
                try:
                    if compare_mod.equivalent(compare, mine, prepared(d, raw), params):
                        out.add(d)
                except Exception:
                    continue
            return frozenset(out)

        return await self.catalog.read(check)

    def _reap(self):
        if self._frozen is not None:
            return None
        now = self.reactor.seconds()
        ch = self.engine.reap(now)
        if not ch:
            self._wake()  # extra replicas may be wanted now, or a host may take one now (silence.py)
            return None
        lost = _lost(ch)
        self.stats.lost += lost
        self.stats.expired += lost
        d = Deferred.fromCoroutine(self._commit(ch, now))
        d.addCallback(lambda _: self._wake())
        d.addErrback(lambda f: log.warn("reaping failed: {f}", f=f.getErrorMessage()))
        return d


def _lost(ch: Changes) -> int:
    return sum(1 for f in ch.replicas.values() if f.get("status") == ReplicaStatus.LOST)
