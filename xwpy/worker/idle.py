"""Idle-cycles policy: the grid runs only while the machine's owner does not need it.

``decide`` is the pure rule (tested directly); ``Sampler`` measures with psutil. The owner's load
is the machine's CPU load minus what the grid's own jobs use, in CPUs. Above ``threshold`` (a
fraction of the machine) the worker suspends its jobs at once; it resumes only after the load has
stayed under ``resume_below`` for ``calm_samples`` consecutive samples — hysteresis, so a busy
owner is not disturbed by jobs flapping on and off. (The volunteer's other reasons to suspend —
time windows, battery — are :mod:`xwpy.worker.prefs`'.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

# The owner's load read from this file (a fraction of the machine, "0.9") instead of measured: how
# the end-to-end tests play a busy owner on a machine whose real load they do not control.
LOAD_FILE_ENV = "XWPY_OWNER_LOAD_FILE"


@dataclass(frozen=True)
class IdleSettings:
    threshold: float = 0.5
    resume_below: float = 0.3
    calm_samples: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.resume_below <= self.threshold <= 1:
            raise ValueError("need 0 < resume_below <= threshold <= 1")
        if self.calm_samples < 1:
            raise ValueError("calm_samples must be at least 1")


@dataclass(frozen=True)
class Sample:
    total: float  # machine CPU load, in CPUs
    grid: float  # CPU used by the grid's jobs, in CPUs
    cpus: int

    @property
    def owner_load(self) -> float:
        """The owner's share of the machine, 0..1."""
        return max(0.0, self.total - self.grid) / max(1, self.cpus)


@dataclass(frozen=True)
class IdleState:
    suspended: bool = False
    calm: int = 0
    reason: str = ""


def decide(settings: IdleSettings, state: IdleState, sample: Sample) -> IdleState:
    load = sample.owner_load
    if load > settings.threshold:
        return IdleState(True, 0, f"owner load {load:.0%} above {settings.threshold:.0%}")
    if not state.suspended:
        return IdleState(False, 0, "")
    if load < settings.resume_below:
        calm = state.calm + 1
        if calm >= settings.calm_samples:
            return IdleState(False, 0, "")
        return IdleState(True, calm, state.reason)
    return IdleState(True, 0, state.reason)


class Sampler:
    """Measures machine load and the grid's share of it between two calls (psutil)."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self.cpus = psutil.cpu_count() or 1
        psutil.cpu_percent(interval=None)
        self._last: dict[int, float] = {}
        self._last_wall: float | None = None

    def sample(self, grid_pids: Iterable[int]) -> Sample:
        import time

        ps = self._psutil
        total = ps.cpu_percent(interval=None) / 100.0 * self.cpus
        now = time.monotonic()
        cpu: dict[int, float] = {}
        for pid in grid_pids:
            try:
                root = ps.Process(pid)
                for p in [root, *root.children(recursive=True)]:
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
            except ps.Error:
                continue
        grid = 0.0
        if self._last_wall is not None and now > self._last_wall:
            used = sum(max(0.0, v - self._last.get(pid, v)) for pid, v in cpu.items())
            grid = used / (now - self._last_wall)
        self._last, self._last_wall = cpu, now
        return Sample(total=total, grid=min(grid, total), cpus=self.cpus)


class LoadFile:
    """The owner's load as written in a file (see ``LOAD_FILE_ENV``); unreadable counts as idle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def sample(self, grid_pids: Iterable[int]) -> Sample:
        try:
            load = float(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            load = 0.0
        return Sample(total=min(max(load, 0.0), 1.0), grid=0.0, cpus=1)


def sampler_from_env(environ=os.environ) -> Callable[[Iterable[int]], Sample]:
    """What the worker samples: the machine, measured, unless ``LOAD_FILE_ENV`` names a file."""
    path = environ.get(LOAD_FILE_ENV)
    return LoadFile(Path(path)).sample if path else Sampler().sample
