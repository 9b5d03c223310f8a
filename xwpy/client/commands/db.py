"""``xwpy db``: the catalog's schema revision, and upgrading it (after installing a newer xwpy)."""

from __future__ import annotations

from pathlib import Path

import click

from xwpy.client.context import JSON_HELP, emit, fail

SITE = click.option("--site", "site_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                    help="The site directory (its xwpy.toml names the catalog).")


def _engine(site_dir: Path):
    from xwpy import config
    from xwpy.server.catalog.connector import make_engine, shown_url

    cfg = config.load(site_dir)
    try:
        return make_engine(cfg.database_url, pool_size=1, busy_timeout=5.0)
    except Exception as e:  # noqa: BLE001 - a URL SQLAlchemy cannot use, a missing driver
        fail(f"cannot open the catalog {shown_url(cfg.catalog.url)}: {e}")


def register(cli: click.Group) -> None:
    @cli.group("db")
    def db():
        """The catalog's schema: its revision, and upgrading it to this xwpy's."""

    @db.command("current")
    @SITE
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    def current(site_dir, as_json):
        """Print the catalog's schema revision and whether this xwpy can run on it (exit 1 if not)."""
        from xwpy.server.catalog import revision

        engine = _engine(site_dir)
        try:
            state = revision.state(engine)
        except Exception as e:  # noqa: BLE001 - unreachable, locked, not a database
            fail(f"cannot read the catalog: {e}")
        finally:
            engine.dispose()
        problem = revision.verdict(state.current, state.head, revision.known(), str(site_dir))
        emit({"current": state.current, "head": state.head, "problem": problem}, as_json,
             f"{state.current or 'none'} (this xwpy's: {state.head})")
        if problem:
            fail(problem)

    @db.command("upgrade")
    @SITE
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    def upgrade(site_dir, as_json):
        """Upgrade the catalog's schema to this xwpy's (stop the coordinator and back the catalog up first)."""
        from xwpy.server.catalog import revision

        engine = _engine(site_dir)
        try:
            before, applied = revision.upgrade(engine)
        except revision.SchemaMismatch as e:
            fail(str(e))
        except Exception as e:  # noqa: BLE001 - unreachable, locked; nothing is half-applied on PostgreSQL
            fail(f"the upgrade failed: {type(e).__name__}: {e}")
        finally:
            engine.dispose()
        head = revision.head()
        emit({"before": before, "applied": list(applied), "head": head}, as_json,
             "".join(f"applied {step}\n" for step in applied)
             + f"catalog at revision {head}" + (f" (was {before})" if applied else ", nothing to do"))
