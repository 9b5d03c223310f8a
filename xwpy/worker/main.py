"""``xwpy worker``: run a volunteer's worker until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import shutil
import sys

from twisted.internet import task

from xwpy import lockfile
from xwpy.logs import start_logging
from xwpy.refusal import CannotRun
from xwpy.worker import status
from xwpy.worker.status import Terminal
from xwpy.worker.daemon import Worker, WorkerOptions
from xwpy.worker.idle import sampler_from_env


def run_worker(opts: WorkerOptions, *, log_level: str = "info", watch_idle: bool = True) -> int:
    from twisted.internet import reactor

    lock = lockfile.claim(opts.state_dir / "worker.lock")
    if lock is None:
        holder = lockfile.holder(opts.state_dir / "worker.lock")
        raise CannotRun(f"{opts.state_dir} is in use by another worker (pid {holder}): "
                        "give each worker a --state directory of its own")
    terminal = Terminal(sys.stderr, shutil.get_terminal_size().columns - 1) if _is_terminal(sys.stderr) else None
    start_logging(log_level, terminal)
    worker = Worker(reactor, opts, sampler=sampler_from_env() if watch_idle else None)
    reactor.callWhenRunning(worker.startService)
    reactor.addSystemEventTrigger("before", "shutdown", worker.stopService)
    if terminal is not None:
        def draw():
            terminal.width = shutil.get_terminal_size().columns - 1
            terminal.show(status.line(worker.snapshot(), terminal.width))

        ticker = task.LoopingCall(draw)
        reactor.callWhenRunning(ticker.start, 1.0)
        reactor.addSystemEventTrigger("before", "shutdown", lambda: ticker.running and ticker.stop())
    reactor.run()
    if terminal is not None:
        terminal.close()
    if worker.exit_error:
        raise CannotRun(worker.exit_error)
    return 0


def _is_terminal(stream) -> bool:
    """A volunteer watching: a terminal that understands erasing a line (not TERM=dumb)."""
    return stream.isatty() and os.environ.get("TERM", "") not in ("", "dumb")
