"""The catalog's health probe: a real write that changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from xwpy.server.catalog.schema import users


def probe(conn) -> int:
    """Rewrite the schema revision with its own value — a real write, so a database locked by
    another program, read-only or out of space fails here where a read would pass — and count
    the users (a real read). Used by the health check and by the scheduler's recovery."""
    conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
    return conn.execute(select(func.count()).select_from(users)).scalar_one()
