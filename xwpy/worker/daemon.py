"""The volunteer's worker daemon.

It registers its host once (the host token is kept in its state directory), says hello at every
start, then loops: wait for a free slot and for the owner to leave the machine idle, long-poll for
work, and run each replica — stage inputs (verified, cached by sha256), run confined, archive,
upload, report. A heartbeat extends its leases, learns which replicas to abort, and carries the
checkpoints of apps that upload them. When the coordinator is away it retries with backoff; a
finished result is kept on disk and retried until its replica's deadline (xwpy.worker.outbox).

Job directories outlive the worker: each replica's directory has a manifest beside it
(``jobs/<id>.json``: its assignment, its staged inputs), so a worker that was killed, or stopped
while its jobs had checkpoints, finds them at its next start, says at hello which it holds, and
runs them again in the same directory — where each job finds its ``checkpoint/``. It says at hello
too which finished results it still has to report. Whatever it held and did not keep is
rescheduled at once. On SIGTERM it kills its jobs, keeps those with a
checkpoint, and gives the others' leases back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import platform
import shutil
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from twisted.application import service
from twisted.internet import task
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from xwpy import archive, coordinators, pki, platforms, protocol
from xwpy.image import ImageError
from xwpy.image.archive import environment as image_environment
from xwpy.backoff import Backoff
from xwpy.singleflight import SingleFlight
from xwpy.worker.idle import IdleSettings, IdleState, Sample, decide
from xwpy.worker import power, prefs as vp
from xwpy.worker.disk import (DiskBudget, NoRoom, blob_key, image_key, inputs_offer, part_key, result_key,
                              tree_size)
from xwpy.worker.images import MOUNT_POINTS, ImageCache
from xwpy.worker.link import Link, Refused, Unreachable
from xwpy.worker import outbox
from xwpy.worker.throttle import TransferPolicy
from xwpy.worker.runner import CHECKPOINT_DIR, SOURCE_DATE_EPOCH, Confinement, Outcome, Run, expand_command
from xwpy.worker.uids import UidPool, become_subreaper, interpreter_usable_by

log = Logger()

INLINE_LIMIT = protocol.MAX_INLINE_RESULT
# A job's checkpoint is uploaded (apps with checkpoints = upload) when it changed, at most once
# every this many heartbeats: a job that checkpoints often does not saturate its volunteer's uplink.
CHECKPOINT_HEARTBEATS = 3


@dataclass
class WorkerOptions:
    url: str
    ca_pem: bytes
    volunteer_token: str
    state_dir: Path
    slots: int = 1
    name: str = ""
    wait: float = 20.0
    idle: IdleSettings = field(default_factory=IdleSettings)
    idle_period: float = 2.0
    confine_uids: bool = False  # root only: each slot runs its jobs as an unprivileged uid of its own
    confinement: str = "bwrap"  # bwrap: each job in a bubblewrap sandbox; uid: its uid and limits only
    cores: int = 0  # the cores the volunteer lends (0: all of this machine's)
    memory: int = 0  # the memory the volunteer lends, bytes (0: all of this machine's)
    allow_network: bool = False  # jobs of apps that declare they need the network get it
    # The volunteer's preferences (xwpy.worker.prefs): the ones above are derived from them (cores,
    # memory, allow_network, idle); the windows, battery and transfer ones are read from here.
    prefs: vp.Prefs = field(default_factory=vp.Prefs)
    power_supply: Path = power.POWER_SUPPLY


@dataclass(eq=False)
class _Task:
    assignment: protocol.Assignment
    slot: int
    run: Run | None = None
    aborted: bool = False
    staged: dict[str, str] | None = None  # kept from an earlier life: its directory is ready
    kept: bool = False  # stopped with the worker, its directory kept to resume at the next start
    checkpoint: str | None = None  # its latest checkpoint uploaded
    checkpoint_seen: tuple = ()  # what its checkpoint directory looked like then
    checkpoint_at: float = float("-inf")
    uploading: bool = False


def _same_site(saved: str | None, urls: str) -> bool:
    """The host registered with (``saved``, the URLs it was given then) is of the site at ``urls``:
    they name a coordinator in common (a standby added to the list is still the same site)."""
    try:
        return bool(saved) and bool(set(coordinators.parse(saved)) & set(coordinators.parse(urls)))
    except coordinators.BadURL:
        return False


class Worker(service.Service):
    name = "worker"

    def __init__(self, reactor, options: WorkerOptions, *, sampler: Callable[[list[int]], Sample] | None = None,
                 clock: Callable[[], datetime] = datetime.now):
        self.reactor = reactor
        self.opts = options
        self.state = options.state_dir
        self._sampler = sampler
        self._clock = clock  # local time of day, for the volunteer's windows
        self.link: Link | None = None
        self.tasks: dict[int, _Task] = {}
        self._fetching = SingleFlight()  # by sha256: slots staging the same input share one download
        self._free_slots = list(range(options.slots))
        # Cores to pin jobs to, each job to as many as it asks (its app's limits.cores) while the
        # machine has them free; beyond, a job runs unpinned.
        self._free_cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self._capacity: Deferred | None = None
        self._main: Deferred | None = None
        self._poll: Deferred | None = None
        self._loops: list[task.LoopingCall] = []
        self.idle_state = IdleState()
        self.suspended = ""  # why jobs may not run now (prefs.suspension), "" while they may
        self.heartbeat_seconds = 10.0
        self.host_id: int | None = None
        self.completed = 0
        self.credit: float | None = None  # the host's credit, as its last heartbeat reply said
        self.exit_error: str | None = None
        self._uids: UidPool | None = None
        self._sandbox: dict | None = None  # the bwrap settings common to every job
        self._kept: dict[int, tuple[protocol.Assignment, dict[str, str]]] = {}  # from an earlier life
        self.outbox = outbox.Outbox(reactor, self.state / "results", lambda: self.link, on_done=self._reported,
                                    on_drop=lambda rid: self.disk.forget(result_key(rid)), thread=deferToThread)
        self._heartbeat_failed = False

    # -- life cycle ------------------------------------------------------------------------------

    def startService(self):
        super().startService()
        for sub in ("jobs", "cache", "results", "images"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o711)  # job users may traverse to their own directory, not list
        os.chmod(self.state / "jobs", 0o711)
        os.chmod(self.state / "cache", 0o700)
        os.chmod(self.state / "results", 0o700)
        os.chmod(self.state / "images", 0o700)
        self.images = ImageCache(self.state / "images")
        self.disk = DiskBudget(self.opts.prefs.disk_budget)
        if self.opts.confinement == "bwrap":
            self._sandbox = sandbox_settings(self.state)
            log.info("jobs run in a bubblewrap sandbox (network for apps that need it: {net})",
                     net="allowed" if self.opts.allow_network else "never")
        else:
            log.warn("jobs run with --confinement uid: no sandbox; they see this machine's files and network")
        if self.opts.confine_uids:
            self._uids = UidPool(self.opts.slots)
            if self._sandbox is None and not interpreter_usable_by(self._uids.uids[0]):
                self._uids.release()
                raise RuntimeError(
                    "jobs run as unprivileged uids, which cannot start this Python interpreter: install "
                    "it where every user may read it, or run jobs in the sandbox (--confinement bwrap)"
                )
            log.info("jobs run as uids {uids}", uids=self._uids.uids)
            if not become_subreaper():
                log.warn("cannot adopt the orphans of jobs (not Linux?): init reaps them")
        # Only a worker whose jobs run as uids of its own can be sure that what a dead worker left
        # running is gone (the uid pool killed it) before a job runs again in the same directory.
        self._kept = kept_jobs(self.state / "jobs", self.opts.slots if self._uids is not None else 0)
        # Results finished and not yet reported (xwpy.worker.outbox): reported once connected.
        pending = outbox.load(self.state / "results")
        for rid in set(self._kept) & set(pending):  # killed between keeping its result and clearing its directory
            del self._kept[rid]
            _remove(self.state / "jobs" / str(rid), None)
        self.outbox.adopt(pending)
        for p in pending.values():
            self._count_result(p)
        if pending:
            log.info("found {n} finished results not yet reported: reporting them", n=len(pending))
        if self._kept:
            log.info("found the directories of {n} replicas it held: resuming them", n=len(self._kept))
        self._main = Deferred.fromCoroutine(self._run())
        self._main.addErrback(self._fatal)

    def offer(self, held: list[int] | None = None) -> protocol.Hello:
        """What this worker lends: the coordinator packs its jobs within it (scheduler.capacity).
        At hello, ``held``: the replicas it kept (to resume, or whose results it still has to report)."""
        return protocol.Hello(
            held=None if held is None else tuple(held[:protocol.MAX_HELD]),
            cpus=self.opts.cores or max(os.cpu_count() or 1, self.opts.slots),
            memory=self.opts.memory or _memory(),
            platform=platforms.this_platform(),
            images=self._sandbox is not None,  # an image runs only as the root of a sandbox
            network=self._sandbox is not None and self.opts.allow_network,
            disk=inputs_offer(self.opts.prefs.disk_budget, self.disk.results_held()),
        )

    def _fatal(self, failure):
        if failure.check(CancelledError) or getattr(self, "_stopping_for", None) is not None:
            return None
        self._stopping_for = failure  # (once: the heartbeat and the main loop may both find it)
        self.exit_error = failure.getErrorMessage()
        log.error("worker stopping: {why}", why=self.exit_error)
        if self.reactor.running:
            self.reactor.stop()
        return None

    def stopService(self):
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        if self._poll is not None:
            self._poll.cancel()
        if self._capacity is not None and not self._capacity.called:
            self._capacity.callback(None)
        self.outbox.stop()  # its results stay on disk, for the next start
        held = []
        for rid, t in self.tasks.items():
            t.aborted = True
            # A job that checkpointed resumes here at the next start (a reboot, an upgrade); the
            # others are rescheduled now, wherever a host is free.
            t.kept = has_checkpoint(self.state / "jobs" / str(rid))
            if not t.kept:
                held.append(rid)
            if t.run is not None:
                t.run.kill("worker shutting down")
        if len(held) < len(self.tasks):
            log.info("keeping {n} job directories with checkpoints, to resume them", n=len(self.tasks) - len(held))

        async def give_back():
            if held and self.link is not None and self.host_id is not None:
                try:
                    await self.link.release(held)
                    log.info("returned {n} leases", n=len(held))
                except (Unreachable, Refused) as e:
                    log.warn("could not return leases ({e}); they will expire", e=e)
            if self.link is not None:
                await self.link.close()
            if self._uids is not None:
                self._uids.release()

        return Deferred.fromCoroutine(give_back())

    # -- connecting ------------------------------------------------------------------------------

    def _host_file(self) -> Path:
        return self.state / "host.json"

    async def _connect(self) -> None:
        backoff = Backoff()
        saved = None
        try:
            saved = json.loads(self._host_file().read_text())
            if not _same_site(saved.get("url"), self.opts.url):
                saved = None
        except (FileNotFoundError, ValueError):
            saved = None
        while self.running:
            try:
                if saved is None:
                    link = Link(self.reactor, self.opts.url, self.opts.ca_pem, self.opts.volunteer_token)
                    try:
                        offer = self.offer()
                        reg = await link.register(self.opts.name or socket.gethostname(), offer.cpus, offer.memory,
                                                  f"{platform.system()} {platform.machine()}", offer.platform,
                                                  offer.images, bool(offer.network))
                    finally:
                        await link.close()
                    saved = {"url": self.opts.url, "host_id": reg.host_id, "token": reg.token}
                    tmp = self._host_file().with_suffix(".tmp")
                    tmp.unlink(missing_ok=True)
                    pki.write_private(tmp, json.dumps(saved).encode())
                    os.replace(tmp, self._host_file())
                    log.info("registered as host {id}", id=reg.host_id)
                self.link = Link(self.reactor, self.opts.url, self.opts.ca_pem, saved["token"],
                                 transfers=self.transfers())
                timing = await self.link.hello(self.offer(sorted(self._kept) + self.outbox.held()))
                self.host_id = saved["host_id"]
                self.heartbeat_seconds = timing.heartbeat_seconds
                self.link.direct = timing.direct  # blobs straight from/to the site's object store
                log.info("connected to {url} as host {id}", url=self.link.url, id=self.host_id)
                return
            except Unreachable as e:
                delay = backoff.next()
                log.info("coordinator unreachable ({e}); retrying in {d:.1f} s", e=e, d=delay)
                await task.deferLater(self.reactor, delay, lambda: None)
            except Refused as e:
                if e.code == "tls":  # never retried: nothing was sent, and nothing will be
                    raise RuntimeError(e.message) from None
                if e.code == "disabled":  # its volunteer's account: an admin may enable it again
                    delay = backoff.next()
                    log.warn("refused: {why}; retrying in {d:.0f} s", why=e.message, d=delay)
                    await task.deferLater(self.reactor, delay, lambda: None)
                    continue
                if e.code == "revoked":  # registering again with the volunteer's token would undo it
                    raise RuntimeError(f"{e.message} (remove {self._host_file()} to register a new host)") from None
                if e.status == 401 and saved is not None and "token" in saved and self.link is not None:
                    log.warn("host token refused; registering again")
                    saved = None
                    continue
                raise RuntimeError(f"the coordinator refused this worker: {e}") from None

    # -- main loop -------------------------------------------------------------------------------

    async def _resume_kept(self) -> None:
        """Run again the replicas whose directories it kept, those the coordinator still awaits."""
        kept, self._kept = self._kept, {}
        if not kept:
            return
        abort: set[int] = set()
        try:
            abort = set((await self.link.alive(sorted(kept))).abort)
        except (Unreachable, Refused, protocol.ProtocolError) as e:
            log.info("could not ask which kept replicas are still wanted ({e}); the heartbeat will say", e=e)
        for rid, (a, staged) in sorted(kept.items()):
            if rid in abort:
                self.disk.release(rid)
                log.info("replica {rid} is no longer wanted: its directory is removed", rid=rid)
                await deferToThread(_remove, self.state / "jobs" / str(rid), self.state / "results" / f"{rid}.tar")
                continue
            t = _Task(a, self._free_slots.pop(0), staged=staged)
            self.tasks[rid] = t
            log.info("resuming replica {rid} in its kept directory", rid=rid)
            Deferred.fromCoroutine(self._execute(t)).addErrback(
                lambda f, rid=rid: log.failure("replica {rid} crashed the worker's handler", f, rid=rid))

    async def _run(self) -> None:
        for key, path, size, mtime in await deferToThread(_scan_cache, self.state):
            self.disk.found(key, path, size, mtime)
        for rid in self._kept:  # job directories kept to resume count from now (the coordinator may be away)
            self.disk.reserve(rid, await deferToThread(tree_size, self.state / "jobs" / str(rid)))
        self.disk.settle()  # the budget may have shrunk since the last run
        await self._connect()
        self.outbox.start()
        hb = task.LoopingCall(lambda: Deferred.fromCoroutine(self._heartbeat()))
        hb.clock = self.reactor
        hb.start(self.heartbeat_seconds, now=False)
        self._loops.append(hb)
        self._check_idle(sample=False)  # outside its window or on battery: take no work from the start
        idle = task.LoopingCall(self._check_idle)
        idle.clock = self.reactor
        idle.start(self.opts.idle_period, now=False)  # a first sample needs a period to measure
        self._loops.append(idle)
        await self._resume_kept()  # (suspended from the start if it must be, like any job)
        backoff = Backoff()
        while self.running:
            if not self._free_slots or self.suspended:
                self._capacity = Deferred()
                await self._capacity
                continue
            try:
                self._poll = Deferred.fromCoroutine(self.link.request_work(
                    len(self._free_slots), self.opts.wait, self.outbox.held()[:protocol.MAX_HELD]))
                work = await self._poll
            except CancelledError:
                return
            except Unreachable as e:
                delay = backoff.next()
                log.info("work request failed ({e}); retrying in {d:.1f} s", e=e, d=delay)
                await task.deferLater(self.reactor, delay, lambda: None)
                continue
            except Refused as e:
                if e.code == "revoked":
                    raise RuntimeError(f"{e.message} (remove {self._host_file()} to register a new host)") from None
                if e.status == 401 and e.code != "disabled":  # (disabled: retried, an admin may enable it)
                    raise RuntimeError(f"host token no longer valid: {e.message}") from None
                delay = backoff.next()
                log.warn("work request refused: {e}", e=e)
                await task.deferLater(self.reactor, delay, lambda: None)
                continue
            finally:
                self._poll = None
            backoff.reset()
            for a in work:
                if not self._free_slots:  # never more than asked for, but be safe
                    break
                t = _Task(a, self._free_slots.pop(0))
                self.tasks[a.replica_id] = t
                Deferred.fromCoroutine(self._execute(t)).addErrback(
                    lambda f, rid=a.replica_id: log.failure("replica {rid} crashed the worker's handler", f, rid=rid)
                )

    def _slot_freed(self) -> None:
        if self._capacity is not None and not self._capacity.called:
            self._capacity.callback(None)

    # -- heartbeat and idle policy ---------------------------------------------------------------

    async def _heartbeat(self) -> None:
        try:
            progress = {rid: done for rid in self.tasks
                        if (done := read_progress(self.state / "jobs" / str(rid))) is not None}
            checkpoints = {rid: t.checkpoint for rid, t in self.tasks.items() if t.checkpoint}
            self._upload_checkpoints()
            # The replicas whose results wait to be reported are held too: their leases must last.
            waiting = self.outbox.held()
            held = (sorted(self.tasks) + waiting)[:protocol.MAX_HELD]
            reply = await self.link.alive(held, progress, self.suspended, checkpoints, waiting[:protocol.MAX_HELD])
        except Refused as e:
            if e.code == "revoked":  # its replicas are already rescheduled elsewhere: stop now
                self._fatal(Failure(RuntimeError(f"{e.message} (remove {self._host_file()} to register a new host)")))
            log.debug("heartbeat failed: {e}", e=e)
            self._heartbeat_failed = True
            return
        except (Unreachable, protocol.ProtocolError) as e:
            log.debug("heartbeat failed: {e}", e=e)
            self._heartbeat_failed = True
            return
        if self._heartbeat_failed:  # the coordinator is back: the results waiting need not wait on
            self._heartbeat_failed = False
            self.outbox.kick()
        self.credit = reply.credit
        for rid in reply.abort:
            if rid in self.outbox.items:
                self.outbox.abort(rid, "the coordinator no longer wants it (aborted)")
                continue
            t = self.tasks.get(rid)
            if t is not None and not t.aborted:
                t.aborted = True
                log.info("replica {rid} aborted by the coordinator", rid=rid)
                if t.run is not None:
                    t.run.kill("aborted by the coordinator")

    def _upload_checkpoints(self) -> None:
        """Start uploading the checkpoints that changed (apps with checkpoints = upload)."""
        now = self.reactor.seconds()
        for rid, t in self.tasks.items():
            if (t.assignment.checkpoints != "upload" or t.run is None or t.uploading or t.aborted
                    or now - t.checkpoint_at < CHECKPOINT_HEARTBEATS * self.heartbeat_seconds):
                continue
            t.uploading = True
            d = Deferred.fromCoroutine(self._upload_checkpoint(rid, t))
            d.addErrback(lambda f, rid=rid: log.failure("uploading the checkpoint of replica {rid} failed", f, rid=rid))

    async def _upload_checkpoint(self, rid: int, t: _Task) -> None:
        path = self.state / "results" / f"{rid}.checkpoint.tar"
        try:
            packed = await deferToThread(pack_checkpoint, self.state / "jobs" / str(rid), path, t.checkpoint_seen,
                                         t.assignment.limits.output_bytes)
            if packed is None:
                return
            seen, digest = packed
            await self.link.upload(path, digest, replica=rid)
            t.checkpoint, t.checkpoint_seen, t.checkpoint_at = digest, seen, self.reactor.seconds()
            log.debug("replica {rid}: checkpoint {sha} uploaded", rid=rid, sha=digest[:12])
        except (Unreachable, Refused, archive.ArchiveError, OSError) as e:
            log.info("could not upload the checkpoint of replica {rid} ({e}); later", rid=rid, e=e)
        finally:
            t.uploading = False
            path.unlink(missing_ok=True)

    def snapshot(self):
        """What the status line shows (xwpy.worker.status)."""
        from xwpy.worker.status import Snapshot

        running = tuple((rid, read_progress(self.state / "jobs" / str(rid))) for rid in sorted(self.tasks))
        change = vp.next_change(self.opts.prefs.compute_windows, self._clock())
        return Snapshot(self.completed, running, self.suspended, change, self.host_id is not None,
                        to_report=len(self.outbox.items), dropped=self.outbox.dropped_late, credit=self.credit)

    def transfer_wait(self) -> float:
        """Seconds before a download or an upload may start (0: now), by the volunteer's transfer
        windows: the hook for the transfer code, which caps rates at opts.prefs.download_limit and
        upload_limit (bytes per second, 0: no cap)."""
        return vp.transfer_wait(self.opts.prefs, self._clock())

    def transfers(self) -> TransferPolicy:
        """How downloads and uploads run (xwpy.worker.transfer): within the volunteer's transfer
        windows (transfer_wait), capped at their download_limit and upload_limit (bytes per second,
        0: no cap)."""
        p = self.opts.prefs
        return TransferPolicy(download_rate=p.download_limit, upload_rate=p.upload_limit,
                              wait=lambda _now: self.transfer_wait())

    def _check_idle(self, sample: bool = True) -> None:
        """May jobs run now (the volunteer's windows, battery, the owner's load)? Suspend or resume them."""
        p = self.opts.prefs
        if sample and self._sampler is not None:
            pids = [t.run.pid for t in self.tasks.values() if t.run is not None and t.run.pid]
            self.idle_state = decide(self.opts.idle, self.idle_state, self._sampler(pids))
        busy = (self.idle_state.reason or "owner busy") if self.idle_state.suspended else ""
        battery = not p.on_battery and power.on_battery(self.opts.power_supply)
        before, self.suspended = self.suspended, vp.suspension(p, self._clock(), on_battery=battery, busy=busy)
        if self.suspended and not before:
            log.info("suspending jobs: {why}", why=self.suspended)
            for t in self.tasks.values():
                if t.run is not None:
                    t.run.suspend()
        elif before and not self.suspended:
            log.info("resuming jobs (were suspended: {why})", why=before)
            for t in self.tasks.values():
                if t.run is not None:
                    t.run.resume()
            self._slot_freed()

    # -- one replica -----------------------------------------------------------------------------

    def _take_cpus(self, n: int) -> tuple[int, ...]:
        if n > len(self._free_cpus):
            return ()
        taken, self._free_cpus = tuple(self._free_cpus[:n]), self._free_cpus[n:]
        return taken

    def _confinement(self, slot: int, a: protocol.Assignment, image_root: Path | None = None) -> Confinement:
        sandbox = None
        if self._sandbox is not None:
            sandbox = {**self._sandbox, "network": bool(a.network and self.opts.allow_network)}
            if image_root is not None:
                sandbox.update(image_root=str(image_root), job_dir=_job_dir(a.image),
                               image_env=image_environment(a.image.env))
        if self._uids is None:
            return Confinement(sandbox=sandbox)
        uid = self._uids.uids[slot]
        return Confinement(uid, uid, sandbox)

    async def _execute(self, t: _Task) -> None:
        a = t.assignment
        workdir = self.state / "jobs" / str(a.replica_id)
        result_path = self.state / "results" / f"{a.replica_id}.tar"
        cpus: tuple[int, ...] = ()
        # Its directory holds a copy of each input (the coordinator says their sizes) — a kept
        # directory holds what it holds.
        self.disk.reserve(a.replica_id, sum(i.size or 0 for i in a.inputs))
        if t.staged is not None:
            held = await deferToThread(tree_size, workdir)
            self.disk.reserve(a.replica_id, max(held, sum(i.size or 0 for i in a.inputs)))
        image = image_key(a.image.id) if a.image is not None else None
        if image:
            self.disk.pin(image)  # its root while it runs
        try:
            try:
                argv = expand_command(a.command, a.args)
                image_root = None
                if a.image is not None:
                    if self._sandbox is None:
                        raise ImageError("this worker runs no sandbox (--confinement uid): it cannot run images")
                    image_root = await self._image(a.image, a.replica_id)
                    argv = [*a.image.entrypoint, *argv]
                conf = dataclasses.replace(self._confinement(t.slot, a, image_root), cpus=self._take_cpus(a.limits.cores))
                cpus = conf.cpus
                if t.staged is not None:  # its directory, kept: the job resumes from its checkpoint
                    staged = t.staged
                    if conf.uid is not None:  # (another slot, another uid)
                        await deferToThread(_chown_tree, workdir, conf.uid, conf.gid)
                else:
                    staged = await self._stage(a, workdir, conf)
                    await deferToThread(write_manifest, workdir, a, staged)
                if t.aborted:
                    return
                t.run = Run(self.reactor, workdir, argv, a.limits, conf, staged, resumed=t.staged is not None)
                ended = t.run.start()
                if self.suspended:
                    t.run.suspend()
                outcome = await ended
                if t.aborted:
                    return
                outcome = await deferToThread(t.run.pack, outcome, result_path)
            except (Unreachable, Refused, archive.ArchiveError, ImageError, OSError, NoRoom) as e:
                outcome = Outcome(None, "", f"worker could not run the job: {e}")
            if not t.aborted:
                pending = await self._keep_result(t, outcome, result_path)
                # Its directory goes before the report: the result is all that is left of the job.
                await deferToThread(_remove, workdir, None)
                self.disk.release(a.replica_id)
                first = await self.outbox.keep(pending)  # on disk: retried until its deadline
                self._count_result(pending)
                self.disk.settle()
                await first  # (the slot is free once the coordinator has it or it waits)
        finally:
            self.disk.release(a.replica_id)
            if image:
                self.disk.unpin(image)
            self.tasks.pop(a.replica_id, None)
            self._free_cpus = sorted(self._free_cpus + list(cpus))
            self._free_slots.append(t.slot)
            self._free_slots.sort()
            if not t.kept:
                await deferToThread(_remove, workdir, None if a.replica_id in self.outbox.items else result_path)
            self._slot_freed()

    async def _stage(self, a: protocol.Assignment, workdir: Path, conf: Confinement) -> dict[str, str]:
        """Make the job's directory: the bundle unpacked, then each input copied read-only."""
        if workdir.exists():
            await deferToThread(shutil.rmtree, workdir)
        workdir.mkdir(mode=0o700)
        if a.bundle is not None:
            with self.disk.pinned(blob_key(a.bundle)):
                bundle = await self._cached(a.bundle, replica=a.replica_id)
                await deferToThread(archive.extract, bundle, workdir)
        if a.checkpoint is not None:  # another host's, uploaded: the job resumes from it here
            with self.disk.pinned(blob_key(a.checkpoint)):
                saved = await self._cached(a.checkpoint, replica=a.replica_id)
                (workdir / CHECKPOINT_DIR).mkdir(exist_ok=True)
                await deferToThread(archive.extract, saved, workdir / CHECKPOINT_DIR)
        staged = {}
        for inp in a.inputs:
            with self.disk.pinned(blob_key(inp.sha256)):
                src = await self._cached(inp.sha256, inp.size, replica=a.replica_id)
                dest = workdir / inp.name
                if inp.member is None:
                    await deferToThread(shutil.copyfile, src, dest)
                else:  # one file of an archive: a result of a job this one runs after
                    await deferToThread(_copy_member, src, inp.member, dest)
            os.chmod(dest, 0o444)
            staged[inp.name] = inp.sha256
        # The same clock in every replica: what a job reads of its files' times (gzip stores its
        # input's mtime) is the same everywhere.
        await deferToThread(_fix_times, workdir, SOURCE_DATE_EPOCH)
        if conf.uid is not None:
            await deferToThread(_chown_tree, workdir, conf.uid, conf.gid)
        return staged

    async def _image(self, spec: protocol.ImageSpec, replica: int | None = None) -> Path:
        """The image's unpacked root: from the cache, or fetched, verified and unpacked once (the
        slots that need it meanwhile wait for that one unpack)."""
        root = self.images.lookup(spec.id)
        if root is not None:
            return root

        async def fetch_and_unpack() -> Path:
            with self.disk.pinned(blob_key(spec.sha256)):
                path = await self._cached(spec.sha256, replica=replica)
                points = (*MOUNT_POINTS, _job_dir(spec).lstrip("/"))
                root = await deferToThread(self.images.unpack, spec.id, path, points)
            self.disk.add(image_key(spec.id), root, await deferToThread(tree_size, root))
            self.disk.settle()
            return root

        root = await self._fetching.run(("image", spec.id), fetch_and_unpack)
        self.disk.use(image_key(spec.id))
        return root

    async def _cached(self, sha256: str, size: int | None = None, *, replica: int | None = None) -> Path:
        """A blob from the cache, checked against its sha256 each time it is staged (a damaged
        copy is fetched again); downloads are checked by the link. Room is made for it first when
        its size is known (the disk budget), else after it lands."""
        key, path = blob_key(sha256), self.state / "cache" / sha256
        part = path.with_name(path.name + ".part")
        if size is not None and not path.exists():
            self.disk.forget(part_key(sha256))  # what a cut download holds counts within its size
            self.disk.make_room(size, f"input {sha256[:12]} ({size} bytes)")
        try:
            with self.disk.pinned(part_key(sha256)):  # (resumed: not evicted meanwhile)
                path = await self._fetching.run(sha256, lambda: self._fetch(sha256, replica))
        except Exception:
            if part.exists():  # kept to resume later: it counts until then
                self.disk.add(part_key(sha256), part, part.stat().st_size)
            raise
        self.disk.forget(part_key(sha256))
        self.disk.add(key, path, path.stat().st_size)
        if size is None:
            self.disk.settle()
        return path

    async def _fetch(self, sha256: str, replica: int | None = None) -> Path:
        path = self.state / "cache" / sha256
        if path.exists():
            digest, _ = await deferToThread(archive.sha256_file, path)
            if digest == sha256:
                return path
            log.warn("cached {sha} is damaged (it hashes to {digest}): fetching it again", sha=sha256, digest=digest)
            path.unlink(missing_ok=True)
        await self.link.download(sha256, path, replica=replica)
        return path

    async def _keep_result(self, t: _Task, outcome: Outcome, result_path: Path) -> outbox.Pending:
        """The replica's report, kept with its archive until the coordinator has it (outbox)."""
        a = t.assignment
        inline = None
        if outcome.ok and outcome.size <= INLINE_LIMIT:
            inline = await deferToThread(outcome.archive.read_bytes)
        report = protocol.ResultReport(
            replica_id=a.replica_id,
            exit_code=outcome.exit_code,
            result_sha256=outcome.digest if outcome.ok else None,
            inline=inline,
            stderr_tail=outcome.stderr_tail[-protocol.STDERR_TAIL:],
            error=outcome.error[:1024],
        )
        upload = outcome.ok and inline is None
        if not upload:
            await deferToThread(result_path.unlink, True)
        # An assignment from a coordinator that did not say its deadline: the default one.
        deadline = a.deadline or self.reactor.seconds() + protocol.DEFAULT_DEADLINE
        return outbox.Pending(report, deadline, result_path if upload else None)

    def _count_result(self, p: outbox.Pending) -> None:
        """A result waiting to be reported counts in the disk budget (and goes if it must)."""
        if p.archive is None:  # (its report alone: a few kilobytes)
            return
        self.disk.add_result(result_key(p.replica_id), p.archive, p.archive.stat().st_size, p.deadline,
                             lambda rid=p.replica_id: self.outbox.drop(rid, "the disk budget needs its room"))

    def _reported(self, rid: int, verdict: str) -> None:
        if verdict == outbox.ACCEPTED:
            self.completed += 1


def _scan_cache(state: Path) -> list[tuple[str, Path, int, float]]:
    """What the cache holds from a previous run: (key, path, size, last use). Blocking."""
    out = []
    for p in (state / "cache").iterdir():
        if len(p.name) == 64 and p.is_file():
            st = p.stat()
            out.append((blob_key(p.name), p, st.st_size, st.st_mtime))
        elif len(p.name) == 69 and p.name.endswith(".part") and p.is_file():  # a download cut short
            st = p.stat()
            out.append((part_key(p.name[:64]), p, st.st_size, st.st_mtime))
    for p in (state / "images").iterdir():
        if not p.name.startswith(".") and p.is_dir():
            out.append((image_key(f"sha256:{p.name}"), p, tree_size(p), p.stat().st_mtime))
    return out


PROGRESS_FILE = "progress"


def read_progress(workdir: Path) -> float | None:
    """The fraction done a job wrote in its ``progress`` file ("0.42" or "42%"), or None. The
    file is the job's: read without following a link, a few bytes at most, anything odd ignored."""
    try:
        fd = os.open(workdir / PROGRESS_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return None
    return min(max(value, 0.0), 1.0) if value == value else None  # NaN is no progress


def _job_dir(spec: protocol.ImageSpec) -> str:
    """Where an image job's directory is bound: the image's WorkingDir, or /job."""
    from xwpy.worker.bwrap import JOB_DIR

    wd = spec.workdir.rstrip("/")
    return wd if wd and wd not in ("/", "/proc", "/dev", "/tmp") else JOB_DIR


def _memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def sandbox_settings(state_dir: Path) -> dict:
    """What every job's bubblewrap sandbox shows of this machine (see xwpy.worker.bwrap)."""
    from xwpy.worker import bwrap

    exe = shutil.which("bwrap")
    if exe is None:
        raise RuntimeError(f"bwrap not found on PATH: {bwrap.INSTALL_HINT}")
    layout = bwrap.host_layout()
    return {"exe": exe, "slirp4netns": shutil.which("slirp4netns") or "slirp4netns", "layout": layout,
            "ro_binds": list(bwrap.interpreter_paths()), "hide": [str(state_dir)]}


def _fix_times(root: Path, when: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
    os.utime(root, (when, when))


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _remove(workdir: Path, result_path: Path | None) -> None:
    _manifest(workdir).unlink(missing_ok=True)  # first: a directory without it is never resumed
    shutil.rmtree(workdir, ignore_errors=True)
    if result_path is not None:
        result_path.unlink(missing_ok=True)
    stdout = workdir.parent / f"{workdir.name}.stdout"
    stdout.unlink(missing_ok=True)


# -- job directories kept across restarts, and their checkpoints -----------------------------------


def _manifest(workdir: Path) -> Path:
    return workdir.parent / f"{workdir.name}.json"


def write_manifest(workdir: Path, a: protocol.Assignment, staged: dict[str, str]) -> None:
    """What a later life of the worker needs to run the replica again in this directory."""
    path = _manifest(workdir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"assignment": protocol.encode(a), "staged": staged}))
    os.replace(tmp, path)


def kept_jobs(jobs_dir: Path, slots: int) -> dict[int, tuple[protocol.Assignment, dict[str, str]]]:
    """The replicas an earlier life of the worker left with a manifest and a directory holding a
    checkpoint (at most ``slots``, lowest ids first); everything else in ``jobs_dir`` is removed
    (a job without a checkpoint would start over: it may as well do so on any host, at once)."""
    kept: dict[int, tuple[protocol.Assignment, dict[str, str]]] = {}
    for path in sorted(jobs_dir.glob("*.json"), key=lambda p: (len(p.stem), p.stem)):
        if len(kept) >= slots or not path.stem.isdigit() or not has_checkpoint(jobs_dir / path.stem):
            continue
        try:
            saved = json.loads(path.read_text())
            a = protocol.parse(protocol.Assignment, saved["assignment"])
            staged = {str(k): str(v) for k, v in saved["staged"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if a.replica_id == int(path.stem):
            kept[a.replica_id] = (a, staged)
    names = {str(rid) for rid in kept} | {f"{rid}.json" for rid in kept} | {f"{rid}.stdout" for rid in kept}
    for leftover in jobs_dir.iterdir():
        if leftover.name not in names:
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    return kept


def has_checkpoint(workdir: Path) -> bool:
    """Has the job saved something in its checkpoint directory (a real directory, not a link)?"""
    folder = workdir / CHECKPOINT_DIR
    try:
        return stat.S_ISDIR(folder.lstat().st_mode) and any(folder.iterdir())
    except OSError:
        return False


def pack_checkpoint(workdir: Path, dest: Path, seen: tuple, limit: int) -> tuple[tuple, str] | None:
    """The job's checkpoint directory as a canonical archive at ``dest``, and what it looked like
    (names, sizes, times): None when it is as ``seen``, empty, or larger than ``limit`` bytes."""
    if not has_checkpoint(workdir):
        return None
    folder = workdir / CHECKPOINT_DIR
    members = archive.walk(folder)
    look = tuple((rel, p.lstat().st_size, p.lstat().st_mtime_ns) for rel, p in members)
    if look == seen or sum(size for _, size, _ in look) > limit:
        return None
    with open(dest, "wb") as f:
        archive.write_dir(folder, f)
    return look, archive.sha256_file(dest)[0]


def _copy_member(archive_path: Path, member: str, dest: Path) -> None:
    """Stage one file of a result archive; a clear error when it has no such file."""
    with open(dest, "wb") as out:
        if not archive.copy_member(archive_path, member, out):
            raise archive.ArchiveError(f"input {dest.name}: the result it comes from has no file {member!r}")
