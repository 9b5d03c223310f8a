"""Data: immutable blobs named by sha256; a row per (blob, owner) carries the owner's rights."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from twisted.internet.defer import Deferred

from xwpy.lifecycle import JobStatus
from xwpy.server.catalog.rows import Data
from xwpy.server.catalog.schema import data, jobs, users


WIDTH = {"private": 0, "group": 1, "public": 2}  # a second upload may only widen access


def _row(r) -> Data:
    return Data(r.sha256, r.size, r.owner_id, r.login, r.access, r.name, r.group_name)


def _q():
    return select(data, users.c.login, users.c.group_name).join(users, users.c.id == data.c.owner_id)


def upsert(conn, *, sha256: str, size: int, owner_id: int, access: str, name: str, now: float, job_id=None) -> str:
    """Record that ``owner_id`` holds this blob; a second upload may widen access (private < group
    < public) or rename it, never narrow its access."""
    row = conn.execute(
        select(data.c.id, data.c.access).where(data.c.sha256 == sha256, data.c.owner_id == owner_id)
    ).first()
    if row is None:
        conn.execute(
            data.insert().values(
                sha256=sha256, size=size, owner_id=owner_id, access=access, name=name, job_id=job_id, created_at=now
            )
        )
        return access
    else:
        # Never narrower: jobs and other users may already rely on the wider access.
        wider = max(row.access, access, key=WIDTH.__getitem__)
        conn.execute(data.update().where(data.c.id == row.id).values(access=wider, name=name or data.c.name))
        return wider


def readable(conn, sha256: str, user_id: int, group: str, admin: bool) -> Data | None:
    """A row through which this user may read the blob, if there is one (the certified result of
    one of their jobs counts as their private data)."""
    q = _q().where(data.c.sha256 == sha256)
    if not admin:
        rights = [data.c.owner_id == user_id, data.c.access == "public"]
        if group:
            rights.append(and_(data.c.access == "group", users.c.group_name == group))
        q = q.where(or_(*rights))
    r = conn.execute(q.limit(1)).first()
    if r is not None:
        return _row(r)
    return next(iter(job_results(conn, [sha256], None if admin else user_id)), None)


def job_results(conn, sha256s: list[str], owner_id: int | None) -> list[Data]:
    """Certified job results among these blobs (of one owner's jobs, unless None), as data."""
    q = (
        select(jobs.c.result_sha256, jobs.c.result_size, jobs.c.owner_id, users.c.login, users.c.group_name)
        .join(users, users.c.id == jobs.c.owner_id)
        .where(jobs.c.result_sha256.in_(sha256s), jobs.c.status == JobStatus.COMPLETED.value)
    )
    if owner_id is not None:
        q = q.where(jobs.c.owner_id == owner_id)
    seen = {}
    for r in conn.execute(q):
        seen.setdefault(r.result_sha256, Data(r.result_sha256, r.result_size or 0, r.owner_id, r.login, "private", "", r.group_name))
    return list(seen.values())


def rows_for(conn, sha256s: list[str]) -> list[Data]:
    """Every row granting access to these blobs, job results included."""
    return [_row(r) for r in conn.execute(_q().where(data.c.sha256.in_(sha256s)))] + job_results(conn, sha256s, None)


def stored_bytes(conn, owner_id: int) -> int:
    """Bytes of the data rows a user owns (a quota's measure)."""
    return int(conn.execute(select(func.coalesce(func.sum(data.c.size), 0)).where(data.c.owner_id == owner_id)).scalar())


def owns(conn, sha256: str, owner_id: int) -> bool:
    return conn.execute(select(data.c.id).where(data.c.sha256 == sha256, data.c.owner_id == owner_id)).first() is not None


def delete(conn, sha256: str, owner_id: int | None) -> int:
    """Delete one owner's row of this blob (every owner's, if None); how many rows went."""
    q = data.delete().where(data.c.sha256 == sha256)
    if owner_id is not None:
        q = q.where(data.c.owner_id == owner_id)
    return conn.execute(q).rowcount


def owned(conn, user_id: int | None, limit: int, after: int) -> list[Data]:
    q = _q().where(data.c.id > after).order_by(data.c.id).limit(limit)
    if user_id is not None:
        q = q.where(data.c.owner_id == user_id)
    return [_row(r) for r in conn.execute(q)]


class DataComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def add(self, **kw) -> Deferred:
        """Fires with the data's access after the upload (never narrower than before)."""
        return self.catalog.write(lambda conn: upsert(conn, **kw))

    def readable(self, sha256: str, user_id: int, group: str, admin: bool) -> Deferred:
        return self.catalog.read(readable, sha256, user_id, group, admin)

    def rows_for(self, sha256s: list[str]) -> Deferred:
        return self.catalog.read(rows_for, sha256s)

    def stored_bytes(self, owner_id: int) -> Deferred:
        return self.catalog.read(stored_bytes, owner_id)

    def owns(self, sha256: str, owner_id: int) -> Deferred:
        return self.catalog.read(owns, sha256, owner_id)

    def delete(self, sha256: str, owner_id: int | None) -> Deferred:
        return self.catalog.write(delete, sha256, owner_id)

    def list(self, user_id: int | None, limit: int = 1000, after: int = 0) -> Deferred:
        return self.catalog.read(owned, user_id, limit, after)
