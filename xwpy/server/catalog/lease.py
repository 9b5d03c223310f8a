"""The catalog's leader lease: one coordinator at a time writes a catalog; the others wait as standbys.

PostgreSQL: a session advisory lock, held by a connection of its own for as long as the coordinator
leads, plus the ``leadership`` row: the epoch, one more at each takeover, the leader's name, and
its lease's end in the database's clock, which the leader renews. A standby takes the lock as
soon as the leader's session ends (its process died: PostgreSQL drops the lock at once). A leader
that is alive but silent (paused, cut off) keeps its session open: once its lease has run out in
the database's clock, a standby ends that leader's sessions itself (``pg_terminate_backend``:
every connection opened under the leader's session name) and takes the lock.

SQLite: an exclusive lock (fcntl) on a file beside the database, which the kernel drops however
its holder ends; the ``leadership`` row and its epoch are kept all the same.

Every write transaction of the catalog starts with :func:`check`: PostgreSQL reads the epoch
``FOR SHARE``, so that a takeover (which updates that row) waits for a write in progress to end,
and any write after it sees the new epoch and is refused (:class:`Fenced`) — a leader that was
paused past its lease and wakes up writes nothing. :func:`decide` is the pure part.
"""

from __future__ import annotations

import enum
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy.engine import Connection, Engine

from xwpy import lockfile

# The advisory lock's key (PostgreSQL's locks are per database: one catalog, one key). Below 2**31,
# so that pg_locks shows it as classid 0, objid KEY.
KEY = 0x78777079  # "xwpy"
# A takeover waits this long at most for a row lock (a write in progress) before trying again.
TAKEOVER_LOCK_TIMEOUT = "5s"


class Fenced(RuntimeError):
    """Another coordinator leads the catalog now: this one's writes are refused."""

    def __init__(self, mine: int, theirs: int | None, holder: str = ""):
        self.mine, self.theirs, self.holder = mine, theirs, holder
        by = f" by {holder}" if holder else ""
        super().__init__(f"the catalog was taken over{by} (epoch {theirs}, this coordinator's was {mine}): "
                         "its writes are refused")


class Action(enum.Enum):
    LEAD = "lead"  # take over: the epoch grows by one
    EVICT = "evict"  # the holder's lease ran out: end its sessions, then try again
    WAIT = "wait"  # stay standby


def decide(locked: bool, expired: bool) -> Action:
    """What a coordinator that is not leading does, given whether it got the lock and whether the
    holder's lease has run out (database clock). Pure."""
    if locked:
        return Action.LEAD
    return Action.EVICT if expired else Action.WAIT


@dataclass(frozen=True)
class Seen:
    """The outcome of one attempt to lead."""

    epoch: int | None  # this coordinator's epoch if it leads now, else None
    holder: str  # who leads (this coordinator's name when it does)
    their_epoch: int  # the row's epoch
    evicted: bool = False  # the holder's sessions were ended: its lease had run out


def session_name() -> str:
    """The name this process's catalog sessions carry (PostgreSQL's application_name, at most 63
    characters): a takeover ends every session of a silent leader by it."""
    return f"xwpy coordinator {uuid.uuid4().hex[:16]}"


def _holder(name: str | None) -> str:
    """Who leads, as the log says it: host, pid and (PostgreSQL) the session name."""
    return f"{socket.gethostname()[:80]} pid {os.getpid()}" + (f" ({name})" if name else "")


def ensure_row(conn: Connection) -> None:
    conn.exec_driver_sql(
        "INSERT INTO leadership (id, epoch, holder, expires_at) VALUES (1, 0, '', 0) ON CONFLICT DO NOTHING")


def check(conn: Connection, mine: int) -> None:
    """The fence, first statement of every write transaction: raise Fenced unless ``mine`` is still
    the catalog's epoch."""
    if conn.dialect.name == "postgresql":
        row = conn.exec_driver_sql("SELECT epoch, holder FROM leadership WHERE id = 1 FOR SHARE").first()
    else:
        row = conn.exec_driver_sql("SELECT epoch, holder FROM leadership WHERE id = 1").first()
    if row is None or row[0] != mine:
        raise Fenced(mine, None if row is None else row[0], "" if row is None else row[1])


def current(engine: Engine) -> tuple[int, str]:
    """The catalog's epoch and leader, read now."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT epoch, holder FROM leadership WHERE id = 1").first()
    return (0, "") if row is None else (row[0], row[1])


class PostgresLease:
    """The lease on a PostgreSQL catalog. Its methods block: call them off the reactor thread."""

    renews = True  # the leader renews it (every third of ttl)

    def __init__(self, engine: Engine, name: str, ttl: float):
        self.engine = engine
        self.name = name  # this process's session name (application_name)
        self.holder = _holder(name)
        self.ttl = ttl
        self.epoch: int | None = None
        self._conn: Connection | None = None  # the session holding the advisory lock
        self._held = False  # whether that session holds it

    def _session(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # A takeover waits for a write in progress (it holds the row), not for ever.
            self._conn.exec_driver_sql(f"SET lock_timeout = '{TAKEOVER_LOCK_TIMEOUT}'")
        return self._conn

    def try_lead(self) -> Seen:
        try:
            return self._try_lead()
        except Exception:
            self._drop_session()
            raise

    def _try_lead(self) -> Seen:
        conn = self._session()
        ensure_row(conn)
        locked = bool(conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s)", (KEY,)).scalar())
        epoch, holder, expired = conn.exec_driver_sql(
            "SELECT epoch, holder, expires_at < extract(epoch FROM clock_timestamp()) FROM leadership WHERE id = 1"
        ).one()
        self._held = locked
        action = decide(locked, bool(expired))
        if action is Action.WAIT:
            return Seen(None, holder, epoch)
        if action is Action.EVICT:
            self._end_sessions(conn, holder, with_lock=True)
            return Seen(None, holder, epoch, evicted=True)
        # The lock is ours: the leader before us is gone, but a session of it may still hold the
        # row (a write transaction it was in when it was paused): end those first.
        self._end_sessions(conn, holder, with_lock=False)
        self.epoch = conn.exec_driver_sql(
            "UPDATE leadership SET epoch = epoch + 1, holder = %s, "
            "expires_at = extract(epoch FROM clock_timestamp()) + %s WHERE id = 1 RETURNING epoch",
            (self.holder, self.ttl),
        ).scalar_one()
        return Seen(self.epoch, self.holder, self.epoch)

    def _end_sessions(self, conn: Connection, holder: str, *, with_lock: bool) -> None:
        """End the sessions of the leader named in ``holder`` (and, ``with_lock``, whichever session
        holds the lock), never this process's."""
        name = holder[holder.rfind("(") + 1:-1] if holder.endswith(")") else None
        if not name:  # no leader yet, or not one named: no session of it to end by name
            name = None
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> %s "
            "AND (application_name = %s OR (%s AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND classid = 0 AND objid = %s AND objsubid = 1)))",
            (self.name, name, with_lock, KEY),
        )

    def renew(self) -> None:
        """Extend the lease; raise Fenced if another coordinator leads now. Any other error (the
        database out of reach) is raised as it is: the caller tries again, and its writes stay
        fenced meanwhile."""
        assert self.epoch is not None
        try:
            conn = self._session()
            if not self._held:  # a new session (the last one broke): the lock again, or it is lost
                self._held = bool(conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s)", (KEY,)).scalar())
                if not self._held:
                    raise Fenced(self.epoch, *current(self.engine))
            n = conn.exec_driver_sql(
                "UPDATE leadership SET expires_at = extract(epoch FROM clock_timestamp()) + %s "
                "WHERE id = 1 AND epoch = %s", (self.ttl, self.epoch)).rowcount
        except Fenced:
            self._drop_session()
            raise
        except Exception:
            self._drop_session()
            epoch, holder = current(self.engine)
            if epoch != self.epoch:
                raise Fenced(self.epoch, epoch, holder) from None
            raise
        if n != 1:
            self._drop_session()
            raise Fenced(self.epoch, *current(self.engine))

    def _drop_session(self) -> None:
        if self._conn is not None:
            try:  # the session ends (not back to the pool, where it would keep the lock)
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001 - a session already gone
                pass
            self._conn = None
        self._held = False

    def release(self) -> None:
        """Let go: a standby may take over at once (the lock released now, not whenever the server
        notices the session's end)."""
        if self._held and self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT pg_advisory_unlock_all()")
            except Exception:  # noqa: BLE001 - the session is gone already, and its lock with it
                pass
        self._drop_session()


class FileLease:
    """The lease on a SQLite catalog: a lock file beside the database."""

    renews = False  # held as long as the process lives

    def __init__(self, engine: Engine, path: Path | None):
        self.engine = engine
        self.path = path  # None: an in-memory database, which no other process can open
        self.holder = _holder(None)
        self.epoch: int | None = None
        self._file: IO | None = None

    def try_lead(self) -> Seen:
        if self.path is not None and self._file is None:
            self._file = lockfile.claim(self.path)
            if self._file is None:
                epoch, holder = current(self.engine)
                return Seen(None, holder or f"pid {lockfile.holder(self.path)}", epoch)
        with self.engine.begin() as conn:
            ensure_row(conn)
            conn.exec_driver_sql("UPDATE leadership SET epoch = epoch + 1, holder = ? WHERE id = 1", (self.holder,))
            self.epoch = conn.exec_driver_sql("SELECT epoch FROM leadership WHERE id = 1").scalar_one()
        return Seen(self.epoch, self.holder, self.epoch)

    def renew(self) -> None:
        """Nothing to renew: the lock lasts as long as this process."""

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def for_engine(engine: Engine, name: str, ttl: float) -> PostgresLease | FileLease:
    if engine.dialect.name == "postgresql":
        return PostgresLease(engine, name, ttl)
    db = engine.url.database
    return FileLease(engine, None if not db or db == ":memory:" else Path(db + "-lease"))


__all__ = ["Action", "Fenced", "FileLease", "PostgresLease", "Seen", "check", "current", "decide", "for_engine",
           "session_name"]
