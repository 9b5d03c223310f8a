"""The catalog's migrations on SQLite and PostgreSQL: they build exactly schema.py, from nothing or
from a catalog made before them; a catalog behind or ahead of this xwpy is refused at open with the
command to run. (tests/grid/test_upgrade.py upgrades a filled catalog of the first release.)"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.schema import CreateColumn
from twisted.internet import reactor

from tests.catalog import first_catalog
from xwpy import tokens
from xwpy.server.catalog import revision, schema
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.connector import Catalog, make_engine

INTEGERS = (sa.Integer, sa.BigInteger, sa.SmallInteger)


def _same_integers_on_sqlite(context, inspected_column, metadata_column, inspected_type, metadata_type):
    # SQLite stores INTEGER and BIGINT alike (0005 changes nothing there); other differences count.
    if context.dialect.name == "sqlite" and isinstance(metadata_type, INTEGERS) and isinstance(inspected_type, INTEGERS):
        return False
    return None


def differences(engine) -> list:
    """What separates the database's schema from schema.py (tables, columns, types, nullability,
    indexes, unique constraints)."""
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": _same_integers_on_sqlite})
        return compare_metadata(mc, schema.metadata)


@pytest.fixture
def engine(catalog_url):
    eng = make_engine(catalog_url)
    yield eng
    eng.dispose()


def test_the_migrations_from_nothing_build_schema_py(engine):
    before, applied = revision.upgrade(engine, empty_ok=True)
    assert before is None and applied[0] == "0001_first_catalog" and len(applied) == len(revision.known())
    assert revision.state(engine).fine
    assert differences(engine) == []


def test_a_new_catalog_is_created_at_head_without_replaying_history(engine):
    revision.open_or_create(engine)
    assert revision.state(engine).current == revision.head()
    assert differences(engine) == []
    assert revision.upgrade(engine) == (revision.head(), [])  # nothing to do


def test_a_catalog_patched_in_place_before_the_migrations_is_upgraded_to_schema_py(engine):
    """Before the migrations, an xwpy opening an older catalog created the tables it lacked and added
    the columns it could (nullable or with a default) but changed no index or type: here, the first
    catalog opened by a later xwpy, its rows kept."""
    with engine.begin() as conn:
        first_catalog.create_first(conn)
        first_catalog.add_oracle_tables(conn)
        users_catalog.insert(conn, login="old", role="user", group="", token_hash=tokens.token_hash("t"), now=1.0)
        # As that xwpy did it: today's tables it lacked, and ALTER TABLE ... ADD COLUMN of today's columns.
        schema.small_blobs.create(conn)
        for column in (schema.jobs.c.request, schema.apps.c.image, schema.apps.c.network, schema.hosts.c.platform):
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {column.table.name} ADD COLUMN {ddl}")
    assert revision.state(engine).current == revision.LEGACY
    with pytest.raises(revision.SchemaMismatch, match=r"predates schema migrations .*: run: xwpy db upgrade --site"):
        Catalog.open(str(engine.url.render_as_string(hide_password=False)), reactor)
    before, applied = revision.upgrade(engine)
    assert before == revision.LEGACY and len(applied) == len(revision.known())
    assert differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(schema.users.c.login)).scalars().all() == ["old"]
        assert not sa.inspect(conn).has_table("meta")


def test_a_catalog_behind_or_ahead_is_refused_at_open_with_the_command_to_run(engine):
    url = engine.url.render_as_string(hide_password=False)
    revision.upgrade(engine, "0005", empty_ok=True)
    with pytest.raises(revision.SchemaMismatch) as behind:
        Catalog.open(url, reactor)
    assert str(behind.value) == (f"the catalog's schema is at revision 0005, behind this xwpy's {revision.head()}: "
                                 "run: xwpy db upgrade --site SITE")
    revision.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(revision.SchemaMismatch, match="revision 9999, which this xwpy does not know .*newer xwpy"):
        Catalog.open(url, reactor)
    with pytest.raises(revision.SchemaMismatch, match="9999"):
        revision.upgrade(engine)  # nor does it try to upgrade it


@pytest.mark.parametrize("current, expected", [
    ("0003", None),
    ("0002", "behind this xwpy's 0003: run: xwpy db upgrade --site /srv/site"),
    (revision.LEGACY, "predates schema migrations (this xwpy needs revision 0003): run: xwpy db upgrade --site /srv/site"),
    (None, "holds no xwpy catalog: create one with xwpy init"),
    ("0004", "which this xwpy does not know (it needs 0003): it was upgraded by a newer xwpy; run that version"),
])
def test_verdict(current, expected):
    said = revision.verdict(current, "0003", frozenset({"0001", "0002", "0003"}), "/srv/site")
    assert (said is None) if expected is None else (expected in said and "\n" not in said)


def test_the_demo_apps_commands_follow_them_into_the_xwpy_package():
    import importlib

    moved = importlib.import_module("xwpy.server.catalog.migrations.versions.0013_apps_in_the_xwpy_package").moved
    assert moved(["{python}", "-m", "apps.vanitygen.unit", "{args}"]) == ["{python}", "-m", "xwpy.apps.vanitygen.unit", "{args}"]
    assert moved(["{python}", "-m", "apps.hashchain.hashchain", "{args}"])[2] == "xwpy.apps.hashchain.hashchain"
    for other in (["{python}", "primes.py", "{args}"], ["apps.vanitygen.unit"], ["{python}", "-m", "myapps.x"]):
        assert moved(other) == other
