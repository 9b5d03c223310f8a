"""One process per directory: an exclusive lock the kernel drops however its holder dies.

A worker holds its state directory's (two workers on one would take each other's host identity
and kill each other's jobs); a coordinator holds its site's (two coordinators on one catalog would
each schedule their own copy of every job)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


def claim(path: Path) -> IO | None:
    """The lock at ``path``, with this process's pid written in it; None if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def holder(path: Path) -> str:
    """The pid its holder wrote, or '?'."""
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"
