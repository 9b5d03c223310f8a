"""``xwpy coordinator``: run a site's coordinator until SIGTERM/SIGINT."""

from __future__ import annotations

from pathlib import Path

from xwpy import config as config_module
from xwpy.logs import start_logging


def run_coordinator(site_dir: Path, log_level: str | None = None) -> int:
    from twisted.internet import reactor

    from xwpy.server.coordinator import make_service

    cfg = config_module.load(site_dir)
    start_logging(log_level or cfg.coordinator.log_level)
    svc = make_service(cfg, reactor)
    failed = []
    svc.ready.addErrback(lambda f: failed.append(f))
    reactor.callWhenRunning(svc.startService)
    reactor.addSystemEventTrigger("before", "shutdown", svc.stopService)
    reactor.run()
    return 1 if failed else 0
