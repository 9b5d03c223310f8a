"""The catalog's health probe: a real write transaction that changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select, update

from xwpy.server.catalog.schema import users


def probe(conn) -> int:
    """Take the database's write lock (an UPDATE matching no row still needs it: a database locked
    by another program, read-only or out of space fails here, where a read would pass) and read."""
    conn.execute(update(users).where(users.c.id < 0).values(login=users.c.login))
    return conn.execute(select(func.count()).select_from(users)).scalar_one()
