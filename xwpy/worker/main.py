"""``xwpy worker``: run a volunteer's worker until SIGTERM/SIGINT."""

from __future__ import annotations

from xwpy.logs import start_logging
from xwpy.worker.daemon import Worker, WorkerOptions
from xwpy.worker.idle import Sampler


def run_worker(opts: WorkerOptions, *, log_level: str = "info", watch_idle: bool = True) -> int:
    from twisted.internet import reactor

    start_logging(log_level)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    sampler = Sampler() if watch_idle else None
    worker = Worker(reactor, opts, sampler=(sampler.sample if sampler else None))
    reactor.callWhenRunning(worker.startService)
    reactor.addSystemEventTrigger("before", "shutdown", worker.stopService)
    reactor.run()
    if worker.exit_error:
        print(f"xwpy worker: {worker.exit_error}", file=__import__("sys").stderr)
        return 1
    return 0
