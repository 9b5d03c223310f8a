"""``xwpy coordinator``: run a site's coordinator until SIGTERM/SIGINT."""

from __future__ import annotations

import sys
from pathlib import Path

from xwpy import config as config_module
from xwpy import lockfile
from xwpy.logs import start_logging
from xwpy.refusal import CannotRun


def run_coordinator(site_dir: Path, log_level: str | None = None) -> int:
    from twisted.internet import reactor

    from xwpy.server.coordinator import make_service

    # The catalog writer thread gives up the GIL around every SQLite call; with the default 5 ms
    # switch interval it then waits behind the reactor thread for each statement.
    sys.setswitchinterval(float(__import__("os").environ.get("XWPY_SWITCH", "0.0005")))
    cfg = config_module.load(site_dir)
    lock_path = cfg.run_file.parent / "coordinator.lock"
    lock = lockfile.claim(lock_path)  # held until this process ends
    if lock is None:
        raise CannotRun(f"site {site_dir} is already served by another coordinator (pid {lockfile.holder(lock_path)}): "
                        "stop it first, or start a site of its own (xwpy init)")
    problem = schema_problem(cfg.database_url, site_dir)
    if problem:
        raise CannotRun(problem)
    start_logging(log_level or cfg.coordinator.log_level, fmt=cfg.coordinator.log_format)
    svc = make_service(cfg, reactor)
    failed = []
    svc.ready.addErrback(lambda f: failed.append(f))
    reactor.callWhenRunning(svc.startService)
    reactor.addSystemEventTrigger("before", "shutdown", svc.stopService)
    reactor.run()
    return 1 if failed else 0


def schema_problem(url: str, site_dir: Path) -> str | None:
    """Why the catalog cannot be used as it is (behind or ahead of this xwpy's schema), in one line
    that names the command to run. A database that cannot be reached is for the start to report."""
    from xwpy.server.catalog import revision
    from xwpy.server.catalog.connector import make_engine

    try:
        engine = make_engine(url, pool_size=1, busy_timeout=5.0)
    except Exception:  # noqa: BLE001 - reported, with its reason, when the coordinator opens it
        return None
    try:
        state = revision.state(engine)
    except Exception:  # noqa: BLE001 - as above
        return None
    finally:
        engine.dispose()
    if state.current is None:
        return None  # an empty database: the coordinator makes it a catalog
    return revision.verdict(state.current, state.head, revision.known(), str(site_dir))
