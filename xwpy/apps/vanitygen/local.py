"""Local mode: a search backend that runs units on this machine's cores, no coordinator.

Each unit runs in a pool process exactly as a grid worker would run it (``unit.run_args``) and
comes back as result.json bytes, so local and grid searches share the planner, the driver and the
verification of results.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import wait
from typing import Optional, Sequence

from xwpy.apps.vanitygen import kernels, unit
from xwpy.apps.vanitygen.candidates import PER_POINT
from xwpy.apps.vanitygen.prefix import compile_prefix


def _serve(conn, kernel: Optional[str]) -> None:
    """A worker process: run the units its parent sends, one at a time, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            index, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            data = unit.run_args(args, kernel)
        except Exception:  # noqa: BLE001 - the search counts a failed unit and goes on
            data = None
        conn.send((index, data))


def _context():
    """fork when this process has no other thread (the ``vanity local`` command): its workers
    start in milliseconds with the kernel already loaded. Otherwise forkserver where possible:
    workers do not inherit the parent's threads, reactor or signal handlers (forking a process
    that runs a Twisted reactor, or any other thread holding a lock, is asking for trouble)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # Imported once, in the fork server: each worker starts with the kernel loaded, not importing it.
    ctx.set_forkserver_preload(["xwpy.apps.vanitygen.unit"])
    return ctx


class LocalBackend:
    """Worker processes, each with a pipe of its own; use as a context manager so that they die
    with the search.

    Not ``multiprocessing.Pool``: its workers share one result queue, and terminating a worker
    while it sends a result leaves that queue's lock held, so ``Pool.terminate`` hung for ever
    (seen once in a few dozen short searches). Nothing is shared here: killing a worker at any
    moment loses only its own pipe."""

    def __init__(self, workers: int, kernel: Optional[str] = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        kernels.get(kernel)  # fail early on an unknown kernel name
        self.kernel = kernel
        self.workers = workers
        self._ctx = _context()
        self._queue: deque[tuple[int, list[str]]] = deque()
        self._idle: list = []  # pipes of workers waiting for a unit
        self._busy: dict = {}  # pipe -> (process, unit index)
        self._procs: dict = {}  # pipe -> process
        for _ in range(workers):
            self._spawn()

    def _spawn(self) -> None:
        mine, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(theirs, self.kernel), daemon=True)
        proc.start()
        theirs.close()
        self._procs[mine] = proc
        self._idle.append(mine)

    def _feed(self) -> None:
        while self._idle and self._queue:
            conn = self._idle.pop()
            index, args = self._queue.popleft()
            conn.send((index, args))
            self._busy[conn] = index

    def submit(self, units: Sequence[tuple[int, list[str]]]) -> None:
        self._queue.extend((index, list(args)) for index, args in units)
        self._feed()

    def poll(self, timeout: float) -> list[tuple[int, Optional[bytes]]]:
        self._feed()
        if not self._busy:
            time.sleep(timeout)  # nothing running: the driver's pace, as an empty pool's would be
            return []
        out = []
        for conn in wait(list(self._busy), timeout):
            index = self._busy.pop(conn)
            try:
                got, data = conn.recv()
                out.append((got, data))
                self._idle.append(conn)
            except (EOFError, OSError):  # the worker died (a crash, the OOM killer): its unit failed
                out.append((index, None))
                self._procs.pop(conn).join(0)
                conn.close()
                self._spawn()
        self._feed()
        return out

    def cancel(self, indices: Sequence[int]) -> None:
        """Queued units are dropped; running ones end with the backend (closing kills them)."""
        drop = set(indices)
        self._queue = deque(u for u in self._queue if u[0] not in drop)

    def close(self) -> None:
        for conn, proc in self._procs.items():
            if proc.is_alive():
                proc.kill()
            conn.close()
        for proc in self._procs.values():
            proc.join()
        self._procs.clear()
        self._idle.clear()
        self._busy.clear()

    def __enter__(self) -> "LocalBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def calibrate(kernel: Optional[str] = None, seconds: float = 0.3) -> float:
    """Keys per second of one process with this kernel, measured on a throwaway range."""
    _, scan = kernels.get(kernel)
    never = compile_prefix("1" * 21)  # only the all-zero hash160 matches
    points, elapsed = 2049, 0.0
    while True:
        t0 = time.perf_counter()
        scan(never, 1 << 200, points)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds or points > 1 << 26:
            return points * PER_POINT / elapsed
        points *= 2
