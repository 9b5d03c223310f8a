"""Finished results the worker still has to report: kept on disk and retried until their deadline.

A volunteer's uplink may be slow or cut, and the coordinator may be away for hours; a result is
worth keeping as long as the coordinator still waits for it — its replica's deadline
(``Assignment.deadline``, the app's, hours by default). So each finished replica's report is
written to the worker's state directory (``results/<id>.json``, beside its archive
``results/<id>.tar`` when it must be uploaded) before the first attempt, and retried with back-off
until the deadline, across restarts of the worker: a restarted worker finds its records, says at
hello that it still holds these replicas (so the coordinator keeps them), and reports them.

A record goes when the coordinator has the result, when it answers that the replica is no longer
wanted (certified elsewhere, aborted, lost, unknown to it: every answer but ``accepted`` and
``missing-result``), when a heartbeat says to abort it, when the deadline passes, or when the disk
budget cannot keep it (:mod:`xwpy.worker.disk`). Each of these is logged.

:func:`next_attempt` is the schedule (pure); :class:`Outbox` runs it on an injected reactor.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from xwpy import protocol
from xwpy.backoff import Backoff
from xwpy.worker.link import Refused, Unreachable
from xwpy.worker.transfer import UploadSession

log = Logger()

# Back-off between attempts to report one result: from a second up to this (a result is retried
# for hours; a coordinator that comes back is noticed sooner, by the heartbeat: Outbox.kick).
RETRY_CAP = 300.0
# Answers of the coordinator that mean "try again later", not "no": busy, overloaded, broken.
_RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))

ACCEPTED = "accepted"
# What the coordinator's answer for a result it no longer wants means, for the log.
UNWANTED = {
    "aborted": ", its job no longer needed it (certified, cancelled or ended without it)",
    "lost": ", its lease had expired (the job went to another host)",
    "unknown": ", no such replica of this host",
}
MISSING = "missing-result"  # the archive is not stored (an upload session lost): send it again


@dataclass
class Pending:
    """One finished replica's report, waiting to be accepted."""

    report: protocol.ResultReport
    deadline: float  # the coordinator's clock (wall clock): it stops waiting then
    archive: Path | None = None  # to upload before reporting (a result too big to send inline)
    session: UploadSession = field(default_factory=UploadSession)  # resumed across attempts and restarts
    uploaded: bool = False  # the coordinator has its archive
    reporting: bool = False  # an attempt is under way
    unwanted: str = ""  # why a heartbeat said to abort it while an attempt was under way
    attempts: int = 0

    @property
    def replica_id(self) -> int:
        return self.report.replica_id


def next_attempt(now: float, deadline: float, delay: float) -> float | None:
    """When to try again after a failure at ``now``, the back-off asking for ``delay`` seconds:
    never later than the deadline (a last try then), None once it has passed."""
    if now >= deadline:
        return None
    return min(now + delay, deadline)


def record_path(results_dir: Path, rid: int) -> Path:
    return results_dir / f"{rid}.json"


def save(results_dir: Path, p: Pending) -> None:
    """Write the record (atomically: a record is whole or absent). Blocking."""
    path = record_path(results_dir, p.replica_id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"report": protocol.encode(p.report), "deadline": p.deadline,
                               "archive": p.archive.name if p.archive is not None else None,
                               "upload": p.session.id}))
    os.replace(tmp, path)


def remove(results_dir: Path, rid: int) -> None:
    """Forget a record, the record first (an archive without its record is a leftover). Blocking."""
    record_path(results_dir, rid).unlink(missing_ok=True)
    (results_dir / f"{rid}.tar").unlink(missing_ok=True)


def load(results_dir: Path) -> dict[int, Pending]:
    """The records an earlier life of the worker left; anything else in ``results_dir`` (an
    archive without a record, a checkpoint being packed, a half-written record) is removed. Blocking."""
    found: dict[int, Pending] = {}
    for path in results_dir.glob("*.json"):
        try:
            saved = json.loads(path.read_text())
            report = protocol.parse(protocol.ResultReport, saved["report"])
            archive = results_dir / saved["archive"] if saved["archive"] else None
            p = Pending(report, float(saved["deadline"]), archive)
            if archive is not None and isinstance(saved.get("upload"), str):  # resumed where the coordinator is
                p.session.id = saved["upload"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, protocol.ProtocolError):
            continue
        if path.stem == str(p.replica_id) and (archive is None or archive.name == f"{p.replica_id}.tar"
                                                and archive.is_file()):
            found[p.replica_id] = p
    keep = {f"{rid}.json" for rid in found} | {p.archive.name for p in found.values() if p.archive is not None}
    for leftover in results_dir.iterdir():
        if leftover.name not in keep and leftover.is_file():
            leftover.unlink(missing_ok=True)
    return found


class Outbox:
    """The pending results and their retry loops. ``link()``: the worker's current link (None
    before it has connected). ``on_done(rid, verdict)``: the coordinator answered (``accepted``, or
    why not); ``on_drop(rid)``: the record is gone (whatever the reason), for the disk budget."""

    def __init__(self, reactor, results_dir: Path, link: Callable[[], object], *,
                 on_done: Callable[[int, str], None] = lambda rid, verdict: None,
                 on_drop: Callable[[int], None] = lambda rid: None,
                 thread: Callable | None = None, retry_cap: float = RETRY_CAP):
        self.reactor = reactor
        self.dir = results_dir
        self._link = link
        self._on_done, self._on_drop = on_done, on_drop
        self._thread = thread  # deferToThread, or None: blocking file work inline (tests)
        self.retry_cap = retry_cap
        self.items: dict[int, Pending] = {}
        self._waits: dict[int, tuple[Deferred, object]] = {}  # rid -> (its wait, its delayed call)
        self.running = False
        self.dropped_late = 0  # results dropped because their deadline passed, since start

    def held(self) -> list[int]:
        return sorted(self.items)

    async def _io(self, f, *args):
        if self._thread is None:
            return f(*args)
        return await self._thread(f, *args)

    # -- life cycle ----------------------------------------------------------------------------

    def adopt(self, found: dict[int, Pending]) -> None:
        """Records from an earlier life (``load``): retried once ``start`` is called."""
        self.items.update(found)

    def start(self) -> None:
        """The worker is connected: start a loop for each record (from an earlier life)."""
        self.running = True
        for p in list(self.items.values()):
            self._spawn(p)

    def stop(self) -> None:
        """The worker stops: its loops end, its records stay for its next life."""
        self.running = False
        for rid in list(self._waits):
            self._wake(rid)

    async def keep(self, p: Pending) -> Deferred:
        """Keep a finished replica's report (on disk first) and start reporting it; the Deferred
        returned fires after the first attempt (the coordinator has it, or it is kept and retried)."""
        await self._io(save, self.dir, p)
        self.items[p.replica_id] = p
        first: Deferred = Deferred()
        self._spawn(p, first)
        return first

    async def add(self, p: Pending) -> None:
        """:meth:`keep`, and wait for its first attempt."""
        await (await self.keep(p))

    def _spawn(self, p: Pending, first: Deferred | None = None) -> None:
        d = Deferred.fromCoroutine(self._deliver(p, first))
        d.addErrback(lambda f, rid=p.replica_id: log.failure("reporting replica {rid} crashed", f, rid=rid))

    def kick(self) -> None:
        """The coordinator answers again (a heartbeat went through after failing): retry now."""
        for rid in list(self._waits):
            self._wake(rid)

    def abort(self, rid: int, why: str) -> None:
        """The coordinator no longer holds this replica for us (a heartbeat's abort): drop it — but
        not under an attempt, whose answer may be that it was just accepted (the heartbeat crossed
        the report); that answer decides."""
        p = self.items.get(rid)
        if p is not None and p.reporting:
            p.unwanted = why
        else:
            self.drop(rid, why)

    def drop(self, rid: int, why: str) -> None:
        """Give up a result (its record and archive are removed), saying why."""
        p = self.items.pop(rid, None)
        if p is None:
            return
        log.info("replica {rid}: result dropped ({why})", rid=rid, why=why)
        self._wake(rid)
        remove(self.dir, rid)  # two unlinks: on the reactor, so that nothing races a later record
        self._on_drop(rid)

    # -- one result ----------------------------------------------------------------------------

    def _wake(self, rid: int) -> None:
        wait = self._waits.pop(rid, None)
        if wait is not None:
            d, call = wait
            if call.active():
                call.cancel()
            d.callback(None)

    async def _sleep_until(self, rid: int, when: float) -> None:
        d: Deferred = Deferred()
        call = self.reactor.callLater(max(0.0, when - self.reactor.seconds()), self._wake, rid)
        self._waits[rid] = (d, call)
        await d

    async def _deliver(self, p: Pending, first: Deferred | None) -> None:
        rid = p.replica_id
        backoff = Backoff(first=1.0, cap=self.retry_cap)
        try:
            while self.running and self.items.get(rid) is p:
                if self.reactor.seconds() > p.deadline:  # (at the deadline, the coordinator still waits)
                    self._too_late(rid)
                    return
                p.attempts += 1
                p.reporting = True
                try:
                    verdict = await self._attempt(p)
                except Refused as e:
                    if e.status not in _RETRY_STATUSES:
                        self.drop(rid, f"the coordinator refused it: {e}")
                        return
                    verdict, why = None, str(e)
                except (Unreachable, KeyError, ValueError, TypeError) as e:  # (the last three: an odd answer)
                    verdict, why = None, str(e) or type(e).__name__
                except OSError as e:
                    if p.archive is not None and not p.archive.exists():
                        self.drop(rid, f"its archive is gone: {e}")
                        return
                    verdict, why = None, str(e)
                finally:
                    p.reporting = False
                if self.items.get(rid) is not p:
                    return
                if verdict in (None, MISSING) and p.unwanted:
                    self.drop(rid, p.unwanted)
                    return
                if verdict == MISSING and p.archive is not None:
                    # Its archive is not stored (an upload session lost): send it again — at once
                    # the first time, else after a back-off like any failure.
                    p.uploaded, p.session = False, UploadSession()
                    if backoff.attempts == 0:
                        backoff.next()
                        continue
                    verdict, why = None, "the coordinator lacks its archive"
                if verdict is None:
                    if not self.running:  # the worker stops: the record waits for its next life
                        return
                    when = next_attempt(self.reactor.seconds(), p.deadline, backoff.next())
                    if when is None:
                        self._too_late(rid)
                        return
                    log.info("could not report replica {rid} ({why}); its result is kept, retrying in {d:.0f} s "
                             "(until its deadline, in {left:.0f} s)", rid=rid, why=why,
                             d=when - self.reactor.seconds(), left=p.deadline - self.reactor.seconds())
                    if first is not None:
                        first, done = None, first
                        done.callback(None)
                    await self._sleep_until(rid, when)
                    continue
                if verdict == ACCEPTED:
                    log.debug("replica {rid}: result accepted", rid=rid)
                    self.items.pop(rid, None)
                    await self._io(remove, self.dir, rid)
                    self._on_drop(rid)
                else:
                    self.drop(rid, f"the coordinator no longer wants it: {verdict}{UNWANTED.get(verdict, '')}")
                self._on_done(rid, verdict)
                return
        finally:
            if first is not None:
                first.callback(None)

    def _too_late(self, rid: int) -> None:
        self.dropped_late += 1
        self.drop(rid, "its deadline passed before the coordinator could be told")

    async def _attempt(self, p: Pending) -> str | None:
        """One try: upload the archive (unless stored already), then report. The coordinator's
        answer for this replica (None: it did not say, try again)."""
        link = self._link()
        if link is None:
            raise Unreachable("not connected")
        if p.archive is not None and not p.uploaded and p.report.result_sha256 is not None:
            # The session's id goes into the record as soon as it is opened: a worker restarted
            # in the middle of a long upload carries on from what the coordinator has.
            p.session.opened = lambda _id: save(self.dir, p) if self.items.get(p.replica_id) is p else None
            await link.upload(p.archive, p.report.result_sha256, p.session, replica=p.replica_id)
            p.uploaded = True
        return (await link.results([p.report])).get(p.replica_id)
