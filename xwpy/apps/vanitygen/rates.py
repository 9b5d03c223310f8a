"""Keys/s of one process per kernel, measured once per machine and kernel build, then remembered.

A search sizes its units from this rate. Measuring it costs most of a second, longer than the
whole search for a short prefix, so the figure is kept in the user's cache directory under a key
naming what it depends on (CPU model, kernel, its build, xwpy's version): a new machine, a rebuilt
C kernel or another release measures again. A cache that cannot be read or written only costs the
measurement.

A rate measured while the machine was busy would stay low: every search run reports the rate it
saw per process (:func:`observe`), and a run that went faster than the remembered rate raises it
to what it saw. What a run sees is at most what the kernel does (its units' keys over the whole
run's time, start-up included), so the remembered rate only ever moves up to rates this machine
reached, and no run has to measure anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from xwpy import __version__
from xwpy.apps.vanitygen import kernels

KEEP = 32  # entries kept: machines sharing a home directory, kernels, releases


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xwpy" / "vanity-rates.json"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _build(scan: Callable) -> list:
    """What identifies the kernel's code: its module's files (the C extension's too)."""
    module = sys.modules.get(scan.__module__)
    files = [getattr(module, "__file__", None)]
    native = getattr(module, "_native", None)
    files.append(getattr(native, "__file__", None))
    out = []
    for name in filter(None, files):
        try:
            st = os.stat(name)
        except OSError:
            continue
        out.append([name, st.st_size, st.st_mtime_ns])
    return out


def key(kernel: Optional[str] = None) -> str:
    name, scan = kernels.get(kernel)
    facts = [__version__, name, platform.machine(), _cpu_model(), _build(scan)]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:24]


def _load(path: Path) -> dict:
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _store(path: Path, known: dict) -> None:
    while len(known) > KEEP:
        known.pop(next(iter(known)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(known, f)
    except OSError:
        return
    try:
        os.replace(f.name, path)
    except OSError:
        os.unlink(f.name)


def _valid(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def rate(kernel: Optional[str] = None, *, measure: Optional[Callable[[Optional[str]], float]] = None,
         path: Optional[Path] = None) -> float:
    """The kernel's keys/s on this machine: remembered, or measured now (and remembered)."""
    if measure is None:
        from xwpy.apps.vanitygen.local import calibrate as measure
    path = path or cache_file()
    k = key(kernel)
    known = _load(path)
    value = known.get(k)
    if _valid(value):
        return float(value)
    value = measure(kernel)
    known.pop(k, None)
    known[k] = value
    _store(path, known)
    return value


def observe(kernel: Optional[str], keys_per_second: float, *, path: Optional[Path] = None) -> bool:
    """A search run saw KEYS_PER_SECOND per process with this kernel: if that beats the
    remembered rate (one measured while the machine was busy), remember it instead. True when
    it did. A rate not remembered yet is left to be measured: a short run's figure is no measure."""
    if not _valid(keys_per_second):
        return False
    path = path or cache_file()
    k = key(kernel)
    known = _load(path)
    value = known.get(k)
    if not _valid(value) or keys_per_second <= value:
        return False
    known.pop(k)
    known[k] = float(keys_per_second)  # moved to the end: the most recently useful entry
    _store(path, known)
    return True
