"""Shared fixtures: catalog URLs (SQLite always; PostgreSQL when XWPY_TEST_PG names a server)."""

from __future__ import annotations

import os

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
    from xwpy.localgrid import drop_postgres_database, fresh_postgres_database

    url = fresh_postgres_database(base)
    yield url
    drop_postgres_database(url)
