"""The catalog's schema revision: which migration a catalog is at, creating and upgrading it.

A new catalog is created from ``schema.py`` and stamped with the newest migration (head); an
existing one is upgraded by ``xwpy db upgrade`` (Alembic, ``migrations/versions/``). The
coordinator opens only a catalog at head: one that is behind (or predates the migrations) needs
the upgrade, one that is ahead was written by a newer xwpy.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from xwpy.server.catalog import schema

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
# A catalog from before the migrations: it has xwpy's tables but no revision.
LEGACY = "legacy"


class SchemaMismatch(RuntimeError):
    """The catalog is not at this xwpy's revision; the message says what to run."""


@dataclasses.dataclass(frozen=True)
class State:
    current: str | None  # the catalog's revision; None: empty database; LEGACY
    head: str

    @property
    def fine(self) -> bool:
        return self.current == self.head


def advice(current: str | None, head: str, known: frozenset[str], site: str = "SITE") -> tuple[str, str] | None:
    """What is wrong with a catalog at ``current`` for an xwpy whose migrations are ``known``
    (``head`` the newest), and what to do; None if nothing is. Pure."""
    upgrade = f"run: xwpy db upgrade --site {site}"
    if current == head:
        return None
    if current is None:
        return "the database holds no xwpy catalog", "create one with xwpy init"
    if current == LEGACY:
        return f"the catalog predates schema migrations (this xwpy needs revision {head})", upgrade
    if current in known:
        return f"the catalog's schema is at revision {current}, behind this xwpy's {head}", upgrade
    return (f"the catalog's schema is at revision {current}, which this xwpy does not know (it needs {head})",
            "it was upgraded by a newer xwpy; run that version")


def verdict(current: str | None, head: str, known: frozenset[str], site: str = "SITE") -> str | None:
    """``advice`` in one line."""
    said = advice(current, head, known, site)
    return None if said is None else f"{said[0]}: {said[1]}"


@functools.lru_cache(maxsize=1)
def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    return _script().get_current_head()


def known() -> frozenset[str]:
    return frozenset(s.revision for s in _script().walk_revisions())


def current(conn: Connection) -> str | None:
    """The catalog's revision, LEGACY, or None for a database without xwpy's tables."""
    from alembic.runtime.migration import MigrationContext

    rev = MigrationContext.configure(conn).get_current_revision()
    if rev is not None:
        return rev
    tables = set(inspect(conn).get_table_names())
    return LEGACY if {"users", "jobs"} <= tables else None


def state(engine: Engine) -> State:
    with engine.connect() as conn:
        return State(current(conn), head())


def check(engine: Engine, site: str = "SITE") -> None:
    """Raise SchemaMismatch unless the catalog is at head."""
    s = state(engine)
    problem = verdict(s.current, s.head, known(), site)
    if problem:
        raise SchemaMismatch(problem)


def create(conn: Connection) -> None:
    """Make a new catalog: today's schema, stamped at head (no need to replay history)."""
    from alembic.runtime.migration import MigrationContext

    schema.metadata.create_all(conn)
    MigrationContext.configure(conn).stamp(_script(), "head")


def open_or_create(engine: Engine) -> None:
    """A new (empty) database becomes a catalog at head; an existing catalog must be at head."""
    with engine.begin() as conn:
        if current(conn) is None:
            create(conn)
            return
    check(engine)


def upgrade(engine: Engine, target: str = "head", *, empty_ok: bool = False) -> tuple[str | None, list[str]]:
    """Upgrade the catalog to ``target`` in one transaction where the database allows (PostgreSQL;
    SQLite commits each schema change: back the file up first). Returns the revision it was at
    and the migrations applied. A database without a catalog is refused unless ``empty_ok``
    (the tests replay every migration from nothing)."""
    from alembic import command
    from alembic.config import Config

    applied: list[str] = []
    with engine.begin() as conn:
        before = current(conn)
        if before is None and not empty_ok:
            raise SchemaMismatch("the database holds no xwpy catalog: create one with xwpy init")
        if before not in (None, LEGACY, *known()):
            raise SchemaMismatch(verdict(before, head(), known()))
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        cfg.attributes["on_version_apply"] = lambda *, step, **_: applied.append(Path(step.up_revision.path).stem)
        # A legacy catalog has no revision: every migration runs, skipping what it already has.
        command.upgrade(cfg, target)
    return before, applied
