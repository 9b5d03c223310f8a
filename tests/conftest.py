"""Shared fixtures: catalog URLs (SQLite always; PostgreSQL when XWPY_TEST_PG names a server)."""

from __future__ import annotations

import os
import uuid

import pytest


def _pg_url() -> str | None:
    return os.environ.get("XWPY_TEST_PG")


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path):
    """A fresh, empty catalog database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        return
    base = _pg_url()
    if not base:
        if os.environ.get("XWPY_REQUIRE_PG"):
            pytest.fail("XWPY_REQUIRE_PG is set but XWPY_TEST_PG is not")
        pytest.skip("set XWPY_TEST_PG=postgresql+psycopg://user@host/db to run against PostgreSQL")
    from sqlalchemy import create_engine, text

    name = f"xwpy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
