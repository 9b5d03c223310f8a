"""Local mode: a search backend that runs units on this machine's cores, no coordinator.

Each unit runs in a pool process exactly as a grid worker would run it (``unit.run_args``) and
comes back as result.json bytes, so local and grid searches share the planner, the driver and the
verification of results.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
import time
from functools import partial
from typing import Optional, Sequence

from xwpy.apps.vanitygen import kernels, unit
from xwpy.apps.vanitygen.candidates import PER_POINT
from xwpy.apps.vanitygen.prefix import compile_prefix


def _worker_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # terminate() must kill, whatever the parent set


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
    """A process pool; use as a context manager so the pool dies with the search."""

    def __init__(self, workers: int, kernel: Optional[str] = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        kernels.get(kernel)  # fail early on an unknown kernel name
        self.kernel = kernel
        self.workers = workers
        self._done: queue.Queue = queue.Queue()
        self._pool = _context().Pool(workers, initializer=_worker_signals)

    def submit(self, units: Sequence[tuple[int, list[str]]]) -> None:
        for index, args in units:
            self._pool.apply_async(
                unit.run_args,
                (args, self.kernel),
                callback=partial(self._finished, index),
                error_callback=partial(self._failed, index),
            )

    def _finished(self, index: int, data: bytes) -> None:
        self._done.put((index, data))

    def _failed(self, index: int, exc: BaseException) -> None:
        self._done.put((index, None))

    def poll(self, timeout: float) -> list[tuple[int, Optional[bytes]]]:
        try:
            out = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def cancel(self, indices: Sequence[int]) -> None:
        """Pool tasks cannot be stopped one by one; closing the backend terminates them all."""

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

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
