"""``xwpy coordinator``: run a site's coordinator until SIGTERM/SIGINT."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from xwpy import config as config_module
from xwpy import lockfile
from xwpy import logs
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
    start_logging(log_level or cfg.coordinator.log_level, fmt=cfg.coordinator.log_format,
                  later=lambda fn: reactor.callLater(0, fn))
    svc = make_service(cfg, reactor)
    failed = []
    gc.set_threshold(*GC_THRESHOLDS)
    svc.ready.addCallbacks(_freeze_startup, lambda f: failed.append(f))
    reactor.callWhenRunning(svc.startService)
    reactor.addSystemEventTrigger("before", "shutdown", svc.stopService)
    reactor.run()
    logs.flush()
    return 1 if failed or svc.fenced is not None else 0


# The cyclic garbage collector's thresholds. Python's defaults (700, 10, 10) made a full
# collection about once a second under dispatch load — a walk over every object the scheduler
# holds (its jobs, replicas, hosts): py-spy found the reactor thread in gc_collect_main for 22 % of
# its time, the largest single cost of a replica. Young collections (which free the requests'
# short-lived cycles) now run every 5,000 allocations and a full one after 100 of the middle
# generation's (plus CPython's own rule: once a quarter of the old objects are new): a few per
# minute. Memory is unchanged in practice: what the requests leave behind dies young.
GC_THRESHOLDS = (5000, 20, 100)


def _freeze_startup(_):
    """Once the state is loaded, what exists (modules, the catalog, the scheduler's rebuilt state)
    is left out of every later collection: most of it lives as long as the process, and what does
    not is still freed as its last reference goes."""
    gc.collect()
    gc.freeze()


def schema_problem(url: str, site_dir: Path) -> str | None:
    """Why the catalog cannot be used as it is (behind or ahead of this xwpy's schema), in one line
    that names the command to run. A database that cannot be reached is for the start to report."""
    from xwpy.server.catalog import revision
    from xwpy.server.catalog.connector import CatalogDriverMissing, make_engine

    try:
        engine = make_engine(url, pool_size=1, busy_timeout=5.0)
    except CatalogDriverMissing as e:  # what to install, in one line rather than a traceback
        return f"cannot open the catalog: {e}"
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
