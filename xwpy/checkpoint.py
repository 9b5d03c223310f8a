"""Checkpoints for Python apps: save a job's state now and then, load it when the job starts.

A job's ``checkpoint/`` directory (in its job directory, the working directory it starts in) is
kept by its worker: after a suspension, a worker restart or a reboot the job starts again in the
same directory and finds there what it saved; for apps registered with ``--checkpoints upload``,
a replica moved to another host finds it too. It is never part of the job's result.

    from xwpy import checkpoint

    state = checkpoint.load(default={"i": 0, "total": 0})
    while state["i"] < n:
        ...                          # one step of work
        if state["i"] % 1000 == 0:
            checkpoint.save(state)   # atomically: a job killed mid-save keeps the previous one

Anything JSON can hold; ``save_bytes``/``load_bytes`` for the rest. Saving is atomic (a temporary
file, flushed, then renamed over the previous checkpoint), so a job killed at any moment finds
either its previous checkpoint or its new one, never half of one. Only this module's files need
be in ``checkpoint/``; write results elsewhere in the job directory, once they are final.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DIRECTORY = "checkpoint"  # relative to the job's directory, where a job starts
STATE = "state.json"


def save_bytes(data: bytes, name: str = "state", directory: str | os.PathLike = DIRECTORY) -> None:
    """Replace the checkpoint ``name`` with ``data``, atomically."""
    folder = Path(directory)
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)
    try:  # the rename itself survives a power loss once its directory is synced
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_bytes(name: str = "state", directory: str | os.PathLike = DIRECTORY) -> bytes | None:
    """The checkpoint ``name``, or None when there is none (the job starts from the beginning)."""
    try:
        return (Path(directory) / name).read_bytes()
    except FileNotFoundError:
        return None


def save(state: Any, directory: str | os.PathLike = DIRECTORY) -> None:
    """Save a JSON-able state as the job's checkpoint."""
    save_bytes(json.dumps(state, sort_keys=True).encode(), STATE, directory)


def load(default: Any = None, directory: str | os.PathLike = DIRECTORY) -> Any:
    """The state last saved, or ``default`` when the job has not saved one."""
    data = load_bytes(STATE, directory)
    return default if data is None else json.loads(data)
