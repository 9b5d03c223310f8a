"""Keys/s of one process per kernel, measured once per machine and kernel build, then remembered.

A search sizes its units from this rate. Measuring it costs most of a second, longer than the
whole search for a short prefix, so the figure is kept in the user's cache directory under a key
naming what it depends on (CPU model, kernel, its build, xwpy's version): a new machine, a rebuilt
C kernel or another release measures again. A cache that cannot be read or written only costs the
measurement.
"""

from __future__ import annotations

import hashlib
import json
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


def rate(kernel: Optional[str] = None, *, measure: Optional[Callable[[Optional[str]], float]] = None,
         path: Optional[Path] = None) -> float:
    """The kernel's keys/s on this machine: remembered, or measured now (and remembered)."""
    if measure is None:
        from xwpy.apps.vanitygen.local import calibrate as measure
    path = path or cache_file()
    k = key(kernel)
    try:
        known = json.loads(path.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    value = known.get(k)
    if isinstance(value, (int, float)) and value > 0:
        return float(value)
    value = measure(kernel)
    known.pop(k, None)
    known[k] = value
    while len(known) > KEEP:
        known.pop(next(iter(known)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(known, f)
    except OSError:
        return value
    try:
        os.replace(f.name, path)
    except OSError:
        os.unlink(f.name)
    return value
