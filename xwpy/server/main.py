"""``xwpy coordinator``: run a site's coordinator until SIGTERM/SIGINT."""

from __future__ import annotations

import sys
from pathlib import Path

from xwpy import config as config_module
from xwpy.logs import start_logging


def run_coordinator(site_dir: Path, log_level: str | None = None) -> int:
    from twisted.internet import reactor

    from xwpy.server.coordinator import make_service

    # The catalog writer thread gives up the GIL around every SQLite call; with the default 5 ms
    # switch interval it then waits behind the reactor thread for each statement.
    sys.setswitchinterval(float(__import__("os").environ.get("XWPY_SWITCH", "0.0005")))
    cfg = config_module.load(site_dir)
    start_logging(log_level or cfg.coordinator.log_level, fmt=cfg.coordinator.log_format)
    svc = make_service(cfg, reactor)
    failed = []
    svc.ready.addErrback(lambda f: failed.append(f))
    reactor.callWhenRunning(svc.startService)
    reactor.addSystemEventTrigger("before", "shutdown", svc.stopService)
    reactor.run()
    return 1 if failed else 0
