"""The catalog connector: SQLAlchemy off the reactor thread, with group commit.

All writes go through one writer thread. It takes every write waiting in its queue and runs them
in one transaction, then fires their Deferreds once the commit is done: under load one commit
(the expensive part) serves many requests, and nobody is answered before their change is durable.
Consecutive writes of a registered *batch kind* are handed together to that kind's applier, which
can merge them into a few multi-row statements (the scheduler's changes are written that way).

Writes that depend on the scheduler's in-memory state (``engine=True``) are poisoned by a failed
commit: every later one fails too, until the scheduler has rebuilt its state from the catalog and
calls :meth:`Catalog.reset_failure`. Other writes are simply retried one by one; one the database
cannot take (locked, full, unreachable) fails with :class:`CatalogUnavailable` too.

Once the coordinator leads the catalog (:mod:`xwpy.server.catalog.lease`), every write transaction
starts by checking the lease's epoch: a coordinator that another has replaced has each write
refused (:class:`CatalogFenced`), and hears it once (``on_fenced``).

Reads run on a small thread pool, each on its own connection (SQLite in WAL mode lets readers
proceed while the writer commits). With SQLite, a checkpointer thread copies the write-ahead log
into the database file in the background, so that commits never wait for it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from prometheus_client import Histogram
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from xwpy.server.catalog import lease, revision

log = Logger()

MAX_BATCH = 512
# A write transaction, commit included: from a SQLite commit (a fraction of a millisecond) to a
# PostgreSQL server far away or a catalog held locked by another program (seconds).
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class CatalogUnavailable(RuntimeError):
    """A write could not be committed; nothing of it was stored."""


class CatalogFenced(CatalogUnavailable):
    """Another coordinator leads the catalog now: no write of this one will ever be committed."""


class CatalogDriverMissing(RuntimeError):
    """The catalog's URL names a database whose Python driver is not installed (PostgreSQL's
    psycopg comes with the ``postgres`` extra, not with a plain install)."""


class CatalogCannotOpen(RuntimeError):
    """The coordinator could not open its catalog at start (a database down, a wrong password):
    the operator's to fix, said in one line."""


def shown_url(url: str) -> str:
    """A catalog URL fit for a message or a log: its password, if any, as ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url if "@" not in url else "(the [catalog] url)"


@dataclass
class _Op:
    fn: Callable[..., Any] | None
    args: tuple
    engine: bool
    d: Deferred
    kind: str | None = None  # a batch kind: payload in args[0], applied with its neighbours


def make_engine(url: str, *, pool_size: int = 6, sqlite_synchronous: str = "NORMAL",
                busy_timeout: float = 30.0, session_name: str | None = None) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            # Checkpoints run on a thread of their own (Catalog._checkpoint_loop): done by the
            # writer at commit, they stalled every request waiting for that commit.
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        return eng
    # Every session named as this process's (PostgreSQL's application_name): a standby taking over
    # from this coordinator, silent past its lease, ends them all by that name (lease.py).
    args = {"application_name": session_name} if session_name and url.startswith("postgresql") else {}
    try:
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=args)
    except ModuleNotFoundError as e:  # the dialect imports its driver here
        if e.name == "psycopg":
            raise CatalogDriverMissing(f"the PostgreSQL driver is not installed ({e}): pip install 'xwpy[postgres]'") from None
        raise CatalogDriverMissing(f"the catalog database's driver is not installed ({e})") from None


class Catalog:
    def __init__(self, engine: Engine, reactor, *, read_threads: int = 4):
        self.engine = engine
        self._reactor = reactor
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._failed: BaseException | None = None
        self._lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="catalog-writer", daemon=True)
        self._stopping = threading.Event()
        self._checkpointer = (
            threading.Thread(target=self._checkpoint_loop, name="catalog-checkpoint", daemon=True)
            if engine.dialect.name == "sqlite" else None
        )
        self._readers = ThreadPool(minthreads=1, maxthreads=read_threads, name="catalog-read")
        self._closed: Deferred | None = None
        self._batch_appliers: dict[str, Callable[[Any, list[Any]], list[Any]]] = {}
        self._epoch: int | None = None  # the lease's epoch, checked by every write once set
        self.on_fenced: Callable[[CatalogFenced], None] | None = None  # told once, on the reactor thread
        self._fenced: CatalogFenced | None = None
        self.commits = 0  # transactions committed (for benchmarks)
        self.writes = 0  # write operations committed
        self.write_seconds = 0.0  # time spent in write transactions
        # Each write transaction's time (not registered globally: one per catalog).
        self.write_latency = Histogram("xwpy_catalog_write_seconds", "Seconds each catalog write transaction "
                                       "took, commit included (committed or not)", buckets=WRITE_BUCKETS, registry=None)
        from xwpy.server.catalog import apps, blobs, chain, data, hosts, jobs, payouts, users

        self.users = users.UsersComponent(self)
        self.apps = apps.AppsComponent(self)
        self.blobs = blobs.BlobsComponent(self)
        self.data = data.DataComponent(self)
        self.hosts = hosts.HostsComponent(self)
        self.jobs = jobs.JobsComponent(self)
        self.chain = chain.ChainComponent(self)
        self.payouts = payouts.PayoutsComponent(self)

    @classmethod
    def open(cls, url: str, reactor, *, read_threads: int = 4, sqlite_synchronous: str = "NORMAL",
             busy_timeout: float = 30.0, session_name: str | None = None) -> "Catalog":
        eng = make_engine(url, pool_size=read_threads + 2, sqlite_synchronous=sqlite_synchronous,
                          busy_timeout=busy_timeout, session_name=session_name)
        try:
            revision.open_or_create(eng)  # a new database becomes a catalog; an old one must be upgraded
        except BaseException:
            eng.dispose()
            raise
        cat = cls(eng, reactor, read_threads=read_threads)
        cat.start()
        return cat

    def start(self) -> None:
        self._writer.start()
        self._readers.start()
        if self._checkpointer is not None:
            self._checkpointer.start()

    def _checkpoint_loop(self, interval: float = 0.5) -> None:
        """Copy committed pages from the WAL into the database file, without blocking writers.
        A PASSIVE checkpoint never waits for anyone; the writer restarts the log once it has all
        been copied."""
        while not self._stopping.wait(interval):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as e:  # noqa: BLE001 - a failed checkpoint is retried next time
                log.warn("checkpoint failed: {e}", e=str(e)[:200])

    def close(self) -> Deferred:
        """Finish the queued writes, then stop the threads."""
        self._closed = Deferred()
        self._stopping.set()
        self._queue.put(None)
        d = self._closed

        def stopped(_):
            self._readers.stop()
            self.engine.dispose()

        d.addCallback(stopped)
        return d

    # -- API ---------------------------------------------------------------------------------------

    def fence(self, epoch: int) -> None:
        """From now on every write transaction first checks that ``epoch`` is still the lease's."""
        self._epoch = epoch

    def write(self, fn: Callable[..., Any], *args: Any, engine: bool = False) -> Deferred:
        """Run ``fn(conn, *args)`` in a write transaction; fire with its result once committed."""
        d: Deferred = Deferred()
        self._queue.put(_Op(fn, args, engine, d))
        return d

    def register_batch(self, kind: str, applier: Callable[[Any, list[Any]], list[Any]]) -> None:
        """``applier(conn, payloads) -> results`` writes a run of consecutive payloads of ``kind``."""
        self._batch_appliers[kind] = applier

    def write_batched(self, kind: str, payload: Any, *, engine: bool = False) -> Deferred:
        """Queue ``payload`` for the ``kind`` applier; fires with its result once committed."""
        d: Deferred = Deferred()
        self._queue.put(_Op(None, (payload,), engine, d, kind))
        return d

    def read(self, fn: Callable[..., Any], *args: Any) -> Deferred:
        return deferToThreadPool(self._reactor, self._readers, self._read_sync, fn, args)

    def _read_sync(self, fn, args):
        with self.engine.connect() as conn:
            return fn(conn, *args)

    @property
    def failure(self) -> BaseException | None:
        return self._failed

    def reset_failure(self) -> None:
        with self._lock:
            self._failed = None

    # -- writer thread ---------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                break
            batch = [op]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            outcomes = self._run(batch)
            self._reactor.callFromThread(self._deliver, batch, outcomes)
            if stop:
                break
        if self._closed is not None:
            self._reactor.callFromThread(self._closed.callback, None)

    def _run(self, batch: list[_Op]) -> list[tuple[bool, Any]]:
        with self._lock:
            failed = self._failed
        outcomes: list[tuple[bool, Any] | None] = [None] * len(batch)
        live = []
        for i, op in enumerate(batch):
            if op.engine and failed is not None:
                outcomes[i] = (False, failed if isinstance(failed, CatalogFenced)
                               else CatalogUnavailable(f"catalog write failed earlier: {failed}"))
            else:
                live.append(i)
        if not live:
            return outcomes  # type: ignore[return-value]
        try:
            results = self._transaction([batch[i] for i in live])
            for i, r in zip(live, results):
                outcomes[i] = (True, r)
            self.commits += 1
            self.writes += len(live)
        except Exception as e:  # noqa: BLE001 - any database failure
            fenced = self._fenced_by(e)
            if fenced is not None:
                with self._lock:
                    self._failed = fenced
                first, self._fenced = self._fenced is None, fenced
                if first and self.on_fenced is not None:
                    self._reactor.callFromThread(self.on_fenced, fenced)
                for i in live:
                    outcomes[i] = (False, fenced)
                return outcomes  # type: ignore[return-value]
            err = CatalogUnavailable(f"catalog write failed: {type(e).__name__}: {_short(e)}")
            if any(batch[i].engine for i in live):
                with self._lock:
                    self._failed = err
            for i in live:
                if batch[i].engine:
                    outcomes[i] = (False, err)
                elif len(live) == 1:
                    # The database could not take it (locked by another program, disk full, gone):
                    # the caller hears "unavailable, retry"; its own mistakes (a duplicate key)
                    # reach it as they are.
                    if isinstance(e, (OperationalError, InterfaceError)):
                        log.warn("{err}", err=str(err))
                        outcomes[i] = (False, err)
                    else:
                        outcomes[i] = (False, e)
                else:  # not tied to the scheduler's state: try it alone
                    outcomes[i] = self._run([batch[i]])[0]
        return outcomes  # type: ignore[return-value]

    def _fenced_by(self, e: Exception) -> CatalogFenced | None:
        """Whether ``e`` means another coordinator leads now: the fence refused the write, or the
        session was cut (a standby taking over ends a silent leader's sessions) and the epoch moved."""
        if self._epoch is None:
            return None
        if isinstance(e, lease.Fenced):
            return CatalogFenced(str(e))
        if isinstance(e, (OperationalError, InterfaceError)):
            try:
                epoch, holder = lease.current(self.engine)
            except Exception:  # noqa: BLE001 - out of reach: an ordinary failure, retried
                return None
            if epoch != self._epoch:
                return CatalogFenced(str(lease.Fenced(self._epoch, epoch, holder)))
        return None

    def _transaction(self, ops: list[_Op]) -> list[Any]:
        t = time.perf_counter()
        try:
            with self.engine.begin() as conn:
                if self._epoch is not None:
                    lease.check(conn, self._epoch)
                results: list[Any] = []
                i = 0
                while i < len(ops):
                    kind = ops[i].kind
                    if kind is None:
                        results.append(ops[i].fn(conn, *ops[i].args))
                        i += 1
                        continue
                    j = i
                    while j < len(ops) and ops[j].kind == kind:
                        j += 1
                    results.extend(self._batch_appliers[kind](conn, [op.args[0] for op in ops[i:j]]))
                    i = j
                return results
        finally:
            took = time.perf_counter() - t
            self.write_seconds += took
            self.write_latency.observe(took)

    def _deliver(self, batch: list[_Op], outcomes: list[tuple[bool, Any]]) -> None:
        for op, (ok, value) in zip(batch, outcomes):
            if ok:
                op.d.callback(value)
            else:
                op.d.errback(Failure(value) if isinstance(value, BaseException) else Failure(RuntimeError(value)))


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return text[:200]


__all__ = ["Catalog", "CatalogFenced", "CatalogUnavailable", "make_engine"]
